"""Shared set-up of the agent service's API tests: tenants (an issuer of their own, made through
the Core API in the platform's account, or in-process in an account of their own), SDK and raw
HTTP clients, scoped keys, and read-only probes of the database. Tests reach these helpers
through the `kit` fixture. Agents and their wallets belong to an issuer, so an issuer isolates a
tenant's agents; only tests across accounts need another account, and they run in-process."""

from __future__ import annotations

import sys
import uuid
from typing import Any

import httpx
import pytest
from authpi_admin import AuthPIAdmin

from authpi.eventstore.sqltext import render
from authpi.platform.testing import tenants
from authpi.platform.testing.tenants import basic
from authpi.platform.testing.tenants import (
    places_holding as places_holding,  # for tests, through `kit`
)

SERVICE = "agent"


class Tenant:
    """An account with an all-scopes key and one issuer of its own to put agents in."""

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

    @property
    def events_path(self) -> str:
        return f"/v1/accounts/{self.account_id}/events"

    def agents_path(self, issuer_id: str | None = None) -> str:
        return f"/v1/accounts/{self.account_id}/issuers/{issuer_id or self.issuer_id}/agents"

    async def key_with(self, scopes: list[str]) -> tuple[str, str]:
        """A key of the tenant's account holding `scopes`."""
        if self.account_id == self.platform.account_id:
            return await tenants.api_key(self.platform, scopes)
        directory = tenants.part(self.platform, "directory")
        key = await directory.create_api_key(
            self.account_id, f"scoped-{uuid.uuid4().hex[:6]}", scopes, actor=tenants.ADMIN
        )
        return key.key_id, key.secret

    async def new_issuer(self, **fields: Any) -> str:
        created = await self.sdk().issuers.create(
            {"name": f"agents-{uuid.uuid4().hex[:8]}", **fields}
        )
        return created.id


async def new_tenant(
    platform, issuer_fields: dict[str, Any] | None = None, *, own_account: bool = False
) -> Tenant:
    """A new issuer of the platform's account (public API only), or with `own_account` of an
    account of its own, created in-process (the test then runs all-in-one only)."""
    fields = {"name": f"agents-{uuid.uuid4().hex[:8]}", **(issuer_fields or {})}
    if not own_account:
        issuer_id = await tenants.new_issuer(platform, **fields)
        return Tenant(platform, platform.account_id, tenants.bootstrap_key(platform), issuer_id)
    account_id, key = await tenants.new_account(platform, "agents tenant")
    admin = AuthPIAdmin(
        api_key=key, account_id=account_id, base_url=platform.api_url, retries=False
    )
    issuer = await admin.issuers.create(fields)
    return Tenant(platform, account_id, key, issuer.id)


async def stored_events(platform, pool, stream_id: str) -> list[dict[str, Any]]:
    query = render(
        "SELECT type, data, meta FROM {schema}.events WHERE stream_id = %s ORDER BY position",
        schema=f"{platform.namespace}_{SERVICE}",
    )
    async with pool.connection() as conn:
        cur = await conn.execute(query, [stream_id])
        return [{"type": t, "data": d, "meta": m} for t, d, m in await cur.fetchall()]


async def count_events(platform, pool) -> int:
    return await tenants.count_events(platform, pool, SERVICE)


@pytest.fixture
def kit():
    """This module's helpers (test modules are not importable under importlib mode)."""
    return sys.modules[__name__]


@pytest.fixture
async def tenant(platform, kit) -> Tenant:
    return await new_tenant(platform)
