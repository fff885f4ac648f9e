"""Shared set-up of the webhook service's API tests: tenants (an account of their own with an
all-scopes key), SDK and raw HTTP clients, scoped keys, and read-only probes of the database.
Tests reach these helpers through the `kit` fixture."""

from __future__ import annotations

import sys
import uuid
from typing import Any

import httpx
import pytest
from authpi_admin import AuthPIAdmin

from authpi.eventstore.sqltext import render
from authpi.platform.testing import tenants
from authpi.platform.testing.tenants import ADMIN, basic, key_ready, part

SERVICE = "webhook"


class Tenant:
    """An account of its own with an all-scopes key."""

    def __init__(self, platform, account_id: str, key: tuple[str, str]) -> None:
        self.platform = platform
        self.account_id = account_id
        self.key = key

    def sdk(self, key: tuple[str, str] | None = None) -> AuthPIAdmin:
        return AuthPIAdmin(
            api_key=key or self.key,
            account_id=self.account_id,
            base_url=self.platform.api_url,
            retries=False,
        )

    def webhooks(self, key: tuple[str, str] | None = None):
        return self.sdk(key).webhooks

    def http(self, key: tuple[str, str] | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.platform.api_url, headers=basic(*(key or self.key)), timeout=30
        )

    @property
    def path(self) -> str:
        return f"/v1/accounts/{self.account_id}/webhooks"

    async def key_with(self, scopes: list[str]) -> tuple[str, str]:
        directory = part(self.platform, "directory")
        key = await directory.create_api_key(
            self.account_id, f"scoped-{uuid.uuid4().hex[:6]}", scopes, actor=ADMIN
        )
        await key_ready(self.platform, key.key_id, key.secret)
        return key.key_id, key.secret


async def new_tenant(platform) -> Tenant:
    account_id, key = await tenants.new_account(platform, "webhooks tenant")
    return Tenant(platform, account_id, key)


def body(**overrides: Any) -> dict[str, Any]:
    """A create body as the SDK README writes it."""
    return {
        "name": "User Events",
        "url": "https://hooks.example.com/authpi",
        "events": ["user.created", "user.updated", "user.deleted"],
        "auth": {"type": "signature", "signature_algorithm": "hmac-sha256"},
        **overrides,
    }


async def stored_events(platform, pool, stream_id: str) -> list[dict[str, Any]]:
    query = render(
        "SELECT type, data, meta FROM {schema}.events WHERE stream_id = %s ORDER BY position",
        schema=f"{platform.namespace}_{SERVICE}",
    )
    async with pool.connection() as conn:
        cur = await conn.execute(query, [stream_id])
        return [{"type": t, "data": d, "meta": m} for t, d, m in await cur.fetchall()]


async def secret_rows(platform, pool, webhook_id: str) -> list[dict[str, Any]]:
    query = render(
        "SELECT kind, serial, wrapped_key, sealed, hint, retires_at FROM {schema}.webhook_secrets"
        " WHERE webhook_id = %s ORDER BY kind, serial",
        schema=f"{platform.namespace}_{SERVICE}",
    )
    async with pool.connection() as conn:
        cur = await conn.execute(query, [webhook_id])
        names = ("kind", "serial", "wrapped_key", "sealed", "hint", "retires_at")
        return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]


async def count_events(platform, pool) -> int:
    return await tenants.count_events(platform, pool, SERVICE)


def schema(platform) -> str:
    return f"{platform.namespace}_{SERVICE}"


def handlers(platform):
    return part(platform, "webhooks", SERVICE)


@pytest.fixture
def kit():
    """This module's helpers (test modules are not importable under importlib mode)."""
    return sys.modules[__name__]


@pytest.fixture
async def tenant(platform, kit) -> Tenant:
    return await new_tenant(platform)
