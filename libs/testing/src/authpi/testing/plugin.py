"""pytest fixtures shared by every suite (loaded with `-p authpi.testing.plugin`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import msgspec
import pytest
import pytest_asyncio
from nats.aio.client import Client as NATS
from psycopg_pool import AsyncConnectionPool

from authpi.config import Settings
from authpi.crypto.clock import FixedClock
from authpi.eventstore.migrations import migrate
from authpi.messaging.streams import connect, ensure_streams, jetstream
from authpi.testing.infra import Infra, new_namespace, start_infra


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    servers = start_infra()
    yield servers
    servers.close()


async def _reset(conn: Any) -> None:
    """Every connection goes back to the pool as it came: tests that switch autocommit on (DDL)
    must not hand an autocommit connection to a test that relies on implicit transactions."""
    await conn.set_autocommit(False)


@pytest_asyncio.fixture(scope="session")
async def pool(infra: Infra) -> AsyncIterator[AsyncConnectionPool]:
    p: AsyncConnectionPool = AsyncConnectionPool(
        infra.dsn, min_size=2, max_size=40, open=False, timeout=30, reset=_reset
    )
    await p.open(wait=True)
    yield p
    await p.close()


@pytest_asyncio.fixture(scope="session")
async def nc(infra: Infra) -> AsyncIterator[NATS]:
    client = await connect(infra.nats_url)
    yield client
    await client.close()


class RunningPlatform(msgspec.Struct, kw_only=True):
    """The all-in-one platform as the e2e tests see it: URLs and the bootstrap credentials."""

    api_url: str
    idp_url: str
    ops_url: str  # /readyz and /metrics (loopback only)
    account_id: str
    api_key_id: str
    api_key_secret: str
    namespace: str
    dsn: str
    nats_url: str
    # The credentials file the platform's NATS connections use (None: no NATS authentication).
    nats_credentials: Path | None = None
    handle: Any = None  # the Platform object, for tests that need to reach inside


@contextlib.asynccontextmanager
async def running_platform(
    infra: Infra,
    data_dir: Path,
    clock: Any = None,
    *,
    embedded_nats: bool = False,
    **overrides: Any,
) -> AsyncGenerator[RunningPlatform, None]:
    """An all-in-one platform of its own (own namespace, free ports), bootstrapped; `clock`
    (e.g. a FixedClock) drives everything time-based in it; `overrides` replace Settings fields
    (e.g. `trusted_proxies`). `embedded_nats`: its own NATS server in `data_dir`, with the
    credentials and permissions `make run` generates."""
    from authpi.gateway.bootstrap import ensure_bootstrap
    from authpi.gateway.platform import Platform

    ns = new_namespace()
    settings = Settings(
        data_dir=data_dir,
        database_url=infra.dsn,
        nats_url=None if embedded_nats else infra.nats_url,
        nats_credentials_file=None if embedded_nats else infra.nats_credentials,
        api_url="http://127.0.0.1:0",
        idp_url="http://127.0.0.1:0",
        ops_url="http://127.0.0.1:0",
        namespace=ns,
        # One client IP runs every suite; the limits themselves are tested on their own app.
        rate_limit_multiplier=1000.0,
    )
    settings = msgspec.structs.replace(settings, **overrides)
    running = Platform(settings, clock=clock)
    await running.start()
    try:
        directory = next(p.exports["directory"] for p in running.parts if "directory" in p.exports)
        _, creds, _ = await ensure_bootstrap(directory, settings, running.api_url, running.idp_url)
        assert creds is not None, "a fresh namespace is bootstrapped"
        yield RunningPlatform(
            api_url=running.api_url,
            idp_url=running.idp_url,
            ops_url=running.ops_url,
            account_id=creds["account_id"],
            api_key_id=creds["api_key_id"],
            api_key_secret=creds["api_key_secret"],
            namespace=ns,
            dsn=infra.dsn,
            nats_url=running.nats_url,
            nats_credentials=running.nats_credentials,
            handle=running,
        )
    finally:
        await running.stop()


@pytest_asyncio.fixture(scope="session")
async def platform(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningPlatform]:
    """One all-in-one platform for the session, on the system clock. The test client stands
    where a deployment's reverse proxy would: its X-Forwarded-For names the client (the IP
    allowlist tests rely on it). Untrusted peers are tested on platforms of their own."""
    async with running_platform(
        infra, tmp_path_factory.mktemp("platform"), trusted_proxies=("127.0.0.1/32",)
    ) as running:
        yield running


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
    await ensure_streams(jetstream(nc), namespace)
    return name


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


T = TypeVar("T")


class Runner(Protocol):
    """A relay or consumer: `run(stop)` until stopped, `running` once it has started."""

    running: asyncio.Event

    async def run(self, stop: asyncio.Event) -> None: ...


@contextlib.asynccontextmanager
async def running(*runners: Runner) -> AsyncGenerator[None, None]:
    """Run relays and consumers for the block's duration, once each has started."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(r.run(stop)) for r in runners]
    try:
        await asyncio.wait_for(asyncio.gather(*(r.running.wait() for r in runners)), 30)
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def eventually(
    check: Callable[[], Awaitable[T]], timeout: float = 30.0, interval: float = 0.05
) -> T:
    """Wait on observable state: call `check` until it returns a truthy value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        await asyncio.sleep(interval)
