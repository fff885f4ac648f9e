"""pytest fixtures shared by every suite (loaded with `-p authpi.testing.plugin`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from nats.aio.client import Client as NATS
from psycopg_pool import AsyncConnectionPool

from authpi.crypto.clock import FixedClock
from authpi.eventstore.migrations import migrate
from authpi.messaging.streams import connect, ensure_streams
from authpi.testing.infra import Infra, new_namespace, start_infra


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    servers = start_infra()
    yield servers
    servers.close()


@pytest_asyncio.fixture(scope="session")
async def pool(infra: Infra) -> AsyncIterator[AsyncConnectionPool]:
    p = AsyncConnectionPool(infra.dsn, min_size=2, max_size=40, open=False, timeout=30)
    await p.open(wait=True)
    yield p
    await p.close()


@pytest_asyncio.fixture(scope="session")
async def nc(infra: Infra) -> AsyncIterator[NATS]:
    client = await connect(infra.nats_url)
    yield client
    await client.close()


@pytest.fixture
def namespace() -> str:
    return new_namespace()


@pytest_asyncio.fixture
async def schema(pool: AsyncConnectionPool, nc: NATS, namespace: str) -> str:
    """A fresh event-store schema `<ns>_test` plus the namespace's JetStream streams."""
    name = f"{namespace}_test"
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        await migrate(conn, name, None)
    await ensure_streams(nc.jetstream(), namespace)
    return name


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


async def eventually(check, timeout: float = 30.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    """Wait on observable state: call `check` until it returns a truthy value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        await asyncio.sleep(interval)
