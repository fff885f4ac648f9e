"""Shared set-up of the agent service's API tests: tenants (an account of their own with an
all-scopes key and an issuer), SDK and raw HTTP clients, scoped keys, and read-only probes of the
database. Tests reach these helpers through the `kit` fixture."""

from __future__ import annotations

import base64
import sys
import uuid
from typing import Any

import httpx
import pytest
from authpi_admin import AuthPIAdmin
from psycopg import sql

from authpi.contracts.base import Actor
from authpi.contracts.scopes import ALL_SCOPES
from authpi.testing.plugin import eventually

ADMIN = Actor(type="system")


def part(platform, name: str):
    return next(p.exports[name] for p in platform.handle.parts if name in p.exports)


def basic(key_id: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{key_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class Tenant:
    """An account of its own with an all-scopes key and one issuer to put agents in."""

    def __init__(self, platform, account_id: str, key: tuple[str, str], issuer_id: str) -> None:
        self.platform = platform
        self.account_id = account_id
        self.key = key
        self.issuer_id = issuer_id

    def sdk(self, key: tuple[str, str] | None = None) -> AuthPIAdmin:
        return AuthPIAdmin(
            api_key=key or self.key,
            account_id=self.account_id,
            base_url=self.platform.api_url,
            retries=False,
        )

    def issuer(self, key: tuple[str, str] | None = None, issuer_id: str | None = None):
        return self.sdk(key).issuer(issuer_id or self.issuer_id)

    def agents(self, key: tuple[str, str] | None = None, issuer_id: str | None = None):
        return self.issuer(key, issuer_id).agents

    def verifiers(self, agent_id: str, key: tuple[str, str] | None = None):
        return self.issuer(key).agent(agent_id).verifiers

    def http(self, key: tuple[str, str] | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.platform.api_url, headers=basic(*(key or self.key)), timeout=30
        )

    def agents_path(self, issuer_id: str | None = None) -> str:
        return f"/v1/accounts/{self.account_id}/issuers/{issuer_id or self.issuer_id}/agents"

    async def key_with(self, scopes: list[str]) -> tuple[str, str]:
        directory = part(self.platform, "directory")
        key = await directory.create_api_key(
            self.account_id, f"scoped-{uuid.uuid4().hex[:6]}", scopes, actor=ADMIN
        )
        await key_ready(self.platform, key.key_id, key.secret)
        return key.key_id, key.secret

    async def new_issuer(self, **fields: Any) -> str:
        created = await self.sdk().issuers.create(
            {"name": f"agents-{uuid.uuid4().hex[:8]}", **fields}
        )
        return created.id


async def key_ready(platform, key_id: str, secret: str) -> None:
    """Wait until the gateway accepts a key created a moment ago (its key cache follows the
    directory's events)."""

    async def accepted() -> bool:
        async with httpx.AsyncClient(base_url=platform.api_url, timeout=30) as http:
            response = await http.get("/v1/me", headers=basic(key_id, secret))
        return response.status_code == 200

    await eventually(accepted)


async def new_tenant(platform, issuer_fields: dict[str, Any] | None = None) -> Tenant:
    directory = part(platform, "directory")
    account_id = await directory.create_account("agents tenant", actor=ADMIN)
    key = await directory.create_api_key(account_id, "admin", list(ALL_SCOPES), actor=ADMIN)
    await key_ready(platform, key.key_id, key.secret)
    admin = AuthPIAdmin(
        api_key=(key.key_id, key.secret),
        account_id=account_id,
        base_url=platform.api_url,
        retries=False,
    )
    issuer = await admin.issuers.create(
        {"name": f"agents-{uuid.uuid4().hex[:8]}", **(issuer_fields or {})}
    )
    return Tenant(platform, account_id, (key.key_id, key.secret), issuer.id)


def schema_of(platform, service: str = "agent") -> sql.Identifier:
    return sql.Identifier(f"{platform.namespace}_{service}")


async def stored_events(platform, pool, stream_id: str) -> list[dict[str, Any]]:
    query = sql.SQL(
        "SELECT type, data, meta FROM {}.events WHERE stream_id = %s ORDER BY position"
    ).format(schema_of(platform))
    async with pool.connection() as conn:
        cur = await conn.execute(query, [stream_id])
        return [{"type": t, "data": d, "meta": m} for t, d, m in await cur.fetchall()]


async def count_events(platform, pool) -> int:
    query = sql.SQL("SELECT count(*) FROM {}.events").format(schema_of(platform))
    async with pool.connection() as conn:
        cur = await conn.execute(query)
        row = await cur.fetchone()
        return int(row[0])


_COLUMNS = """
SELECT table_schema, table_name, column_name, data_type
FROM information_schema.columns c
JOIN information_schema.tables t USING (table_schema, table_name)
WHERE table_schema LIKE %s AND t.table_type = 'BASE TABLE'
  AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea', 'ARRAY')
"""


async def places_holding(platform, pool, needle: str) -> list[str]:
    """Every `schema.table.column` of the platform's namespace whose value contains `needle`."""
    found: list[str] = []
    async with pool.connection() as conn:
        cur = await conn.execute(_COLUMNS, [f"{platform.namespace}\\_%"])
        columns = await cur.fetchall()
        assert columns, "no tables found in the platform's namespace"
        for schema, table, column, data_type in columns:
            if data_type == "bytea":
                test = sql.SQL("position(convert_to(%s, 'UTF8') in {}) > 0")
            else:
                test = sql.SQL("strpos({}::text, %s) > 0")
            query = sql.SQL("SELECT count(*) FROM {}.{} WHERE {}").format(
                sql.Identifier(schema), sql.Identifier(table), test.format(sql.Identifier(column))
            )
            cur = await conn.execute(query, [needle])
            row = await cur.fetchone()
            if row and row[0]:
                found.append(f"{schema}.{table}.{column}")
    return found


@pytest.fixture
def kit():
    """This module's helpers (test modules are not importable under importlib mode)."""
    return sys.modules[__name__]


@pytest.fixture
async def tenant(platform, kit) -> Tenant:
    return await new_tenant(platform)
