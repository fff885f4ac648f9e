"""Shared set-up of the billing service's API tests: tenants (an account of their own with an
all-scopes key), the official SDK's billing resources (generated, not mounted on an accessor:
built on the SDK's own HTTP client with the paths of the contract, 4.5 and 4.31-4.33), raw HTTP,
and the billing service's exports. Tests reach these through the `kit` fixture."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from authpi_admin import AuthPIAdmin
from authpi_admin.generated.resources.invoices import InvoicesResource
from authpi_admin.generated.resources.payment_methods import PaymentMethodsResource
from authpi_admin.generated.resources.usage import UsageResource
from psycopg_pool import AsyncConnectionPool

from authpi.billing.service import MIGRATIONS
from authpi.billing.x402.chain import Chain, Settler
from authpi.embedded.anvil import DEV_KEYS, EmbeddedAnvil
from authpi.eventstore.migrations import migrate
from authpi.eventstore.sqltext import render
from authpi.platform.testing import tenants
from authpi.platform.testing.tenants import basic, part
from authpi.testing.infra import new_namespace
from authpi.testing.plugin import eventually as _eventually
from services.billing.tests.x402kit import ChainKit

USDC_BASE_SEPOLIA = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"


class Tenant:
    def __init__(self, platform: Any, account_id: str, key: tuple[str, str]) -> None:
        self.platform = platform
        self.account_id = account_id
        self.key = key
        self.admin = AuthPIAdmin(
            api_key=key, account_id=account_id, base_url=platform.api_url, retries=False
        )
        base = f"/v1/accounts/{account_id}"
        http = self.admin._http  # the SDK's own client, as its accessors use it
        self.credits = self.admin.credits
        self.usage = UsageResource(http, f"{base}/usage")
        self.invoices = InvoicesResource(http, f"{base}/invoices")
        self.payment_methods = PaymentMethodsResource(http, f"{base}/payment-methods")

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.platform.api_url, headers=basic(*self.key), timeout=30
        )


async def new_tenant(platform: Any) -> Tenant:
    account_id, key = await tenants.new_account(platform, "billing tenant")
    return Tenant(platform, account_id, key)


def ledger_of(platform: Any) -> Any:
    return part(platform, "ledger")


async def stored_events(platform: Any, pool: Any, stream_id: str) -> list[tuple[str, dict]]:
    query = render(
        "SELECT type, data FROM {schema}.events WHERE stream_id = %s ORDER BY stream_version",
        schema=f"{platform.namespace}_billing",
    )
    async with pool.connection() as conn:
        cur = await conn.execute(query, [stream_id])
        return [(t, d) for t, d in await cur.fetchall()]


@pytest.fixture
def kit():
    return sys.modules[__name__]


@pytest.fixture
async def tenant(platform) -> Tenant:
    return await new_tenant(platform)


eventually = _eventually


@pytest_asyncio.fixture(scope="session")
async def chain_kit() -> AsyncIterator[ChainKit]:
    """One Anvil per session with the EIP-3009 token deployed."""
    anvil = EmbeddedAnvil()
    url = await asyncio.to_thread(anvil.start)
    chain = Chain(url)
    deployer = Settler.from_key(chain, DEV_KEYS[0])
    token = await deployer.deploy_token("USD Coin", "2")
    try:
        yield ChainKit(url=url, token=token, deployer=deployer)
    finally:
        await chain.aclose()
        anvil.stop()


@pytest_asyncio.fixture
async def billing_schema(pool: AsyncConnectionPool) -> str:
    """A fresh billing schema of its own (the x402 payment store's tests)."""
    name = f"{new_namespace()}_billing"
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        await migrate(conn, name, MIGRATIONS)
    return name
