"""Helpers the services' API tests share, over the `platform` fixture: its in-process parts, an
account of its own with an all-scopes key, scoped keys and issuers made through the Core API (so
that they serve the distributed run too), Basic auth, waiting until the gateway accepts a key,
and read-only probes of a service's schema. Each suite's conftest hands them to its tests through
its `kit` fixture."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from authpi.contracts.base import Actor
from authpi.contracts.scopes import ALL_SCOPES
from authpi.platform.testing.running import RunningPlatform
from authpi.testing.plugin import eventually

ADMIN = Actor(type="system")


def part(platform: RunningPlatform, name: str, service: str | None = None) -> Any:
    """The export `name` of the running platform's parts (e.g. the directory's handlers); name
    the `service` where several export the same name (`clients`, `agents`)."""
    return next(
        p.exports[name]
        for p in platform.handle.parts
        if name in p.exports and service in (None, p.name)
    )


def basic(key_id: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{key_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def signing_ready(platform: RunningPlatform, issuer_id: str) -> None:
    """Wait until the token service's key cache holds the issuer's signing keys."""

    async def signing() -> bool:
        entry = part(platform, "key_cache", "token").get(issuer_id)
        return entry is not None and bool(entry.signers)

    await eventually(signing)


async def key_ready(platform: RunningPlatform, key_id: str, secret: str) -> None:
    """Wait until the gateway accepts a key created a moment ago (its key cache follows the
    directory's events)."""

    async def accepted() -> bool:
        async with httpx.AsyncClient(base_url=platform.api_url, timeout=30) as http:
            response = await http.get("/v1/me", headers=basic(key_id, secret))
        return response.status_code == 200

    await eventually(accepted)


async def new_account(platform: RunningPlatform, name: str) -> tuple[str, tuple[str, str]]:
    """A new account with an all-scopes key the gateway already accepts: (account id, key)."""
    directory = part(platform, "directory")
    account_id: str = await directory.create_account(name, actor=ADMIN)
    key = await directory.create_api_key(account_id, "admin", list(ALL_SCOPES), actor=ADMIN)
    await key_ready(platform, key.key_id, key.secret)
    return account_id, (key.key_id, key.secret)


async def api_key(
    platform: RunningPlatform, scopes: list[str], *, name: str | None = None
) -> tuple[str, str]:
    """A new key of the platform's account holding `scopes`, created through the Core API with
    the bootstrap key (`POST A/api-keys`): (key id, secret). The gateway accepts it on the next
    request, in either topology."""
    async with httpx.AsyncClient(base_url=platform.api_url, timeout=30) as http:
        response = await http.post(
            f"/v1/accounts/{platform.account_id}/api-keys",
            json={"name": name or f"scoped-{uuid.uuid4().hex[:6]}",
                  "restrictions": {"scopes": scopes}},
            headers=basic(*bootstrap_key(platform)),
        )  # fmt: skip
    assert response.status_code == 201, response.text
    created = response.json()["data"]
    return created["id"], created["secret_plain"]


def bootstrap_key(platform: RunningPlatform) -> tuple[str, str]:
    """The platform's all-scopes bootstrap key: (key id, secret)."""
    return platform.api_key_id, platform.api_key_secret


async def new_issuer(platform: RunningPlatform, name: str, **fields: Any) -> str:
    """A new issuer of the platform's account, created through the Core API with the bootstrap
    key: the public-API way to a tenant of its own (no Core API route creates accounts)."""
    async with httpx.AsyncClient(base_url=platform.api_url, timeout=30) as http:
        response = await http.post(
            f"/v1/accounts/{platform.account_id}/issuers",
            json={"name": name, **fields},
            headers=basic(*bootstrap_key(platform)),
        )
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def schema_of(platform: RunningPlatform, service: str) -> sql.Identifier:
    return sql.Identifier(f"{platform.namespace}_{service}")


async def count_events(platform: RunningPlatform, pool: AsyncConnectionPool, service: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {}.events").format(schema_of(platform, service))
    async with pool.connection() as conn:
        cur = await conn.execute(query)
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


_COLUMNS = """
SELECT table_schema, table_name, column_name, data_type
FROM information_schema.columns c
JOIN information_schema.tables t USING (table_schema, table_name)
WHERE table_schema LIKE %s AND t.table_type = 'BASE TABLE'
  AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea', 'ARRAY')
"""


async def places_holding(
    platform: RunningPlatform, pool: AsyncConnectionPool, needle: str, *, ignore_case: bool = False
) -> list[str]:
    """Every `schema.table.column` of the platform's namespace whose value contains `needle`:
    text and JSON cast to text (case-blind with `ignore_case`), bytea searched as raw bytes.
    One scan per table, counting the rows that hold it column by column."""
    if ignore_case:
        text_test = sql.SQL("strpos(lower({}::text), lower(%(needle)s)) > 0")
    else:
        text_test = sql.SQL("strpos({}::text, %(needle)s) > 0")
    bytes_test = sql.SQL("position(convert_to(%(needle)s, 'UTF8') in {}) > 0")
    found: list[str] = []
    async with pool.connection() as conn:
        cur = await conn.execute(_COLUMNS, [f"{platform.namespace}\\_%"])
        columns = await cur.fetchall()
        assert columns, "no tables found in the platform's namespace"
        tables: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for schema, table, column, data_type in columns:
            tables.setdefault((schema, table), []).append((column, data_type))
        for (schema, table), cols in tables.items():
            counts = sql.SQL(", ").join(
                sql.SQL("count(*) FILTER (WHERE {})").format(
                    (bytes_test if data_type == "bytea" else text_test).format(
                        sql.Identifier(column)
                    )
                )
                for column, data_type in cols
            )
            query = sql.SQL("SELECT {} FROM {}.{}").format(
                counts, sql.Identifier(schema), sql.Identifier(table)
            )
            cur = await conn.execute(query, {"needle": needle})
            row = await cur.fetchone()
            assert row is not None
            found += [
                f"{schema}.{table}.{column}" for (column, _), n in zip(cols, row, strict=True) if n
            ]
    return found
