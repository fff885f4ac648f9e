"""Shared set-up of the directory's API tests: SDK clients, scoped keys, an issuer to work in,
and read-only probes of the database. Tests reach these helpers through the `kit` fixture."""

from __future__ import annotations

import sys
import uuid

import pytest
from authpi_admin import AuthPIAdmin
from psycopg import sql

from authpi.contracts.base import Actor
from authpi.contracts.scopes import ALL_SCOPES

ADMIN = Actor(type="system")


def part(platform, name: str):
    return next(p.exports[name] for p in platform.handle.parts if name in p.exports)


def admin_for(platform, key_id: str, secret: str, account_id: str | None = None) -> AuthPIAdmin:
    return AuthPIAdmin(
        api_key=(key_id, secret),
        account_id=account_id or platform.account_id,
        base_url=platform.api_url,
        retries=False,
    )


def bootstrap_admin(platform) -> AuthPIAdmin:
    return admin_for(platform, platform.api_key_id, platform.api_key_secret)


async def key_with(platform, scopes: list[str], account_id: str | None = None):
    directory = part(platform, "directory")
    return await directory.create_api_key(
        account_id or platform.account_id, f"scoped-{uuid.uuid4().hex[:6]}", scopes, actor=ADMIN
    )


async def all_scopes_but(platform, *missing: str):
    return await key_with(platform, [s for s in ALL_SCOPES if s not in missing])


async def new_issuer(admin: AuthPIAdmin) -> str:
    created = await admin.issuers.create({"name": f"users-{uuid.uuid4().hex[:8]}"})
    return created.id


def schema_of(platform, service: str = "directory") -> sql.Identifier:
    return sql.Identifier(f"{platform.namespace}_{service}")


async def events_of(platform, pool, stream_id: str) -> list[str]:
    query = sql.SQL("SELECT type FROM {}.events WHERE stream_id = %s ORDER BY position").format(
        schema_of(platform)
    )
    async with pool.connection() as conn:
        cur = await conn.execute(query, [stream_id])
        return [r[0] for r in await cur.fetchall()]


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
    """Every `schema.table.column` of the platform's namespace whose value contains `needle`:
    text and JSON cast to text, bytea searched as raw bytes."""
    found: list[str] = []
    async with pool.connection() as conn:
        cur = await conn.execute(_COLUMNS, [f"{platform.namespace}\\_%"])
        columns = await cur.fetchall()
        assert columns, "no tables found in the platform's namespace"
        for schema, table, column, data_type in columns:
            if data_type == "bytea":
                test = sql.SQL("position(convert_to(%s, 'UTF8') in {}) > 0")
            else:
                test = sql.SQL("strpos(lower({}::text), lower(%s)) > 0")
            query = sql.SQL("SELECT count(*) FROM {}.{} WHERE {}").format(
                sql.Identifier(schema),
                sql.Identifier(table),
                test.format(sql.Identifier(column)),
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
