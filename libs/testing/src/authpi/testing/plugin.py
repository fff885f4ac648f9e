"""pytest fixtures shared by every suite (loaded with `-p authpi.testing.plugin`): real PostgreSQL
and NATS, fresh namespaces and schemas, a fixed clock, and waiting on observable state. The
fixtures of a whole running platform live with the host (`authpi.platform.testing.plugin`)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Protocol, TypeVar

import pytest
import pytest_asyncio
from nats.aio.client import Client as NATS
from psycopg_pool import AsyncConnectionPool

from authpi.crypto.clock import FixedClock
from authpi.eventstore.migrations import migrate
from authpi.messaging.streams import connect, ensure_streams, jetstream
from authpi.testing.infra import Infra, new_namespace, start_infra


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--distributed-all", action="store_true",
        help="run every test marked `distributed` (make test-distributed); without it, only "
        "those also marked `quick` (the representative subset make test runs)",
    )  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "distributed: runs against the distributed topology (processes, NATS cluster)"
    )
    config.addinivalue_line("markers", "quick: of the distributed tests, one make test runs")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--distributed-all"):
        return
    left = [
        i
        for i in items
        if i.get_closest_marker("distributed") and not i.get_closest_marker("quick")
    ]
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = [i for i in items if i not in set(left)]


@pytest.fixture(scope="session", autouse=True)
def _one_tls_context() -> Iterator[None]:
    """Every httpx client of the run with the default TLS settings shares one context. httpx
    builds one per client, loading the whole CA bundle (tens of milliseconds of CPU), and the
    suites build thousands of clients (SDK instances, probes, pollers), nearly all to plain http
    on loopback; one context serves any number of connections (none of them negotiates HTTP/2,
    the one setting a connection changes on it)."""
    from httpx._config import create_ssl_context as build

    shared: dict[bool, ssl.SSLContext] = {}

    def create(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
        if verify is not True or cert is not None:
            return build(verify=verify, cert=cert, trust_env=trust_env)
        if trust_env not in shared:
            shared[trust_env] = build(verify=True, cert=None, trust_env=trust_env)
        return shared[trust_env]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("httpx._transports.default.create_ssl_context", create)
        yield


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
