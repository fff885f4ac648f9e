"""Shared set-up of the directory's API tests: SDK clients, scoped keys, an issuer to work in,
and read-only probes of the database. Tests reach these helpers through the `kit` fixture, and
the common fixtures (`admin`, `issuer`, `directory`) by name. Keys of the platform's account and
issuers are made through the Core API, so a test marked `sdk` runs against the distributed run
too; another account exists only in-process (no Core API route creates accounts)."""

from __future__ import annotations

import sys
import uuid
from typing import NamedTuple

import pytest
from authpi_admin import AuthPIAdmin
from psycopg import sql

from authpi.contracts.scopes import ALL_SCOPES
from authpi.platform.testing import tenants
from authpi.platform.testing.tenants import ADMIN, bootstrap_key, part
from services.directory.tests.tenant import admin_for

SERVICE = "directory"


def bootstrap_admin(platform) -> AuthPIAdmin:
    return admin_for(platform, *bootstrap_key(platform))


class Key(NamedTuple):
    key_id: str
    secret: str


async def key_with(platform, scopes: list[str], account_id: str | None = None) -> Key:
    """A key holding `scopes`: of the platform's account through the Core API; of another
    account (made in-process) through the directory's handler."""
    if account_id in (None, platform.account_id):
        return Key(*await tenants.api_key(platform, scopes))
    directory = part(platform, "directory")
    key = await directory.create_api_key(
        account_id, f"scoped-{uuid.uuid4().hex[:6]}", scopes, actor=ADMIN
    )
    return Key(key.key_id, key.secret)


async def all_scopes_but(platform, *missing: str):
    return await key_with(platform, [s for s in ALL_SCOPES if s not in missing])


async def new_issuer(admin: AuthPIAdmin) -> str:
    created = await admin.issuers.create({"name": f"users-{uuid.uuid4().hex[:8]}"})
    return created.id


async def new_user(admin: AuthPIAdmin, issuer: str) -> str:
    user = await admin.issuer(issuer).users.create(
        {"username_type": "email", "username": f"m-{uuid.uuid4().hex[:10]}@example.com"}
    )
    return user.id


def schema_of(platform, service: str = SERVICE) -> sql.Identifier:
    return tenants.schema_of(platform, service)


async def events_of(platform, pool, stream_id: str) -> list[str]:
    query = sql.SQL("SELECT type FROM {}.events WHERE stream_id = %s ORDER BY position").format(
        schema_of(platform)
    )
    async with pool.connection() as conn:
        cur = await conn.execute(query, [stream_id])
        return [r[0] for r in await cur.fetchall()]


async def stored_events(platform, pool, stream_id: str) -> list[dict]:
    query = sql.SQL(
        "SELECT type, data, meta FROM {}.events WHERE stream_id = %s ORDER BY position"
    ).format(schema_of(platform))
    async with pool.connection() as conn:
        cur = await conn.execute(query, [stream_id])
        return [{"type": t, "data": d, "meta": m} for t, d, m in await cur.fetchall()]


async def count_events(platform, pool) -> int:
    return await tenants.count_events(platform, pool, SERVICE)


async def places_holding(platform, pool, needle: str) -> list[str]:
    """The places holding `needle`, case-blind (tenants.places_holding)."""
    return await tenants.places_holding(platform, pool, needle, ignore_case=True)


@pytest.fixture
def kit():
    """This module's helpers (test modules are not importable under importlib mode)."""
    return sys.modules[__name__]


@pytest.fixture
async def admin(platform):
    """An SDK client with the bootstrap key."""
    client = bootstrap_admin(platform)
    yield client
    await client.close()


@pytest.fixture
async def issuer(admin):
    """A new issuer of the bootstrap account to work in."""
    return await new_issuer(admin)


@pytest.fixture
def directory(platform):
    """The directory's account and API-key handler of the running platform."""
    return part(platform, SERVICE)
