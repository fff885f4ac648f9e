"""Fixtures of the billing service's integration tests: one Anvil per session with the
EIP-3009 token deployed, and a fresh billing schema per test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio
from psycopg_pool import AsyncConnectionPool

from authpi.billing.service import MIGRATIONS
from authpi.billing.x402.chain import Chain, Settler
from authpi.embedded.anvil import DEV_KEYS, EmbeddedAnvil
from authpi.eventstore.migrations import migrate
from authpi.testing.infra import new_namespace
from services.billing.tests.x402kit import ChainKit


@pytest_asyncio.fixture(scope="session")
async def chain_kit() -> AsyncIterator[ChainKit]:
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
    name = f"{new_namespace()}_billing"
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        await migrate(conn, name, MIGRATIONS)
    return name
