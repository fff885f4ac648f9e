"""pytest fixtures of a whole platform (loaded with `-p authpi.platform.testing.plugin`, after
`authpi.testing.plugin`, whose `infra` they run on): the all-in-one platform, bootstrapped, in
this process; its captured mail (`mailbox`); a headless Chromium (`browser`, testing/browser.py)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import pytest_asyncio

from authpi.config import Settings
from authpi.platform.bootstrap import account_bootstrap, ensure_bootstrap
from authpi.platform.host import Platform
from authpi.platform.testing.browser import browser, chromium, pytest_runtest_makereport
from authpi.platform.testing.local_run import SharedRun
from authpi.platform.testing.mail import Mailbox
from authpi.platform.testing.running import RunningPlatform
from authpi.testing.infra import Infra, new_namespace, remove_tree

# The browser fixtures and their report hook, registered through this plugin.
__all__ = [
    "RunningPlatform", "browser", "chromium", "local_run", "mailbox", "platform",
    "pytest_runtest_makereport", "running_platform",
]  # fmt: skip


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
        _, creds, _ = await ensure_bootstrap(
            account_bootstrap(running.parts), settings, running.api_url, running.idp_url
        )
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


ALL_IN_ONE, DISTRIBUTED = "all-in-one", "distributed"
# The first test on the distributed run starts it (a dozen processes and a NATS cluster).
DISTRIBUTED_TIMEOUT_S = 900
# Fixtures that reach into the all-in-one platform (its database pool, its NATS connection, its
# in-process parts): a test using one runs against the all-in-one platform only.
IN_PROCESS = frozenset({"pool", "nc", "mailbox", "directory"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sdk: drives the platform through the public APIs only, so it also runs against the "
        "distributed run (`sdk(quick=True)`: in the subset make test runs)",
    )
    config.addinivalue_line("markers", "in_process: reaches inside the all-in-one platform")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked `sdk` runs against the all-in-one platform and against the distributed
    run (marked `distributed`, and `quick` when the marker says so), unless it reaches inside."""
    sdk = metafunc.definition.get_closest_marker("sdk")
    if sdk is None or "platform" not in metafunc.fixturenames:
        return
    if IN_PROCESS & set(metafunc.fixturenames) or metafunc.definition.get_closest_marker(
        "in_process"
    ):
        return
    marks = [pytest.mark.distributed, pytest.mark.timeout(DISTRIBUTED_TIMEOUT_S)]
    marks += [pytest.mark.quick] if sdk.kwargs.get("quick") else []
    metafunc.parametrize(
        "platform", [ALL_IN_ONE, pytest.param(DISTRIBUTED, marks=marks)], indirect=True,
        scope="session",
    )  # fmt: skip


@pytest_asyncio.fixture(scope="session")
async def local_run() -> AsyncIterator[SharedRun]:
    """The session's `authpi up --distributed` (testing/local_run.py), started by the first test
    that needs it. Its data lives in a directory of its own under /tmp, as the test
    infrastructure's does: the embedded PostgreSQL's user must reach it for as long as it runs
    (a restart included), which pytest's private base directory does not let it do."""
    data = Path(tempfile.mkdtemp(prefix="authpi-d-", dir="/tmp"))
    shared = SharedRun(data)
    try:
        yield shared
    finally:
        await shared.close()
        remove_tree(data)


@pytest_asyncio.fixture(scope="session")
async def platform(
    request: pytest.FixtureRequest,
    infra: Infra,
    tmp_path_factory: pytest.TempPathFactory,
    local_run: SharedRun,
) -> AsyncIterator[RunningPlatform]:
    """One all-in-one platform for the session, on the system clock. The test client stands
    where a deployment's reverse proxy would: its X-Forwarded-For names the client (the IP
    allowlist tests rely on it). Untrusted peers are tested on platforms of their own.
    Organizations' upstream IdPs may be plain http, as in development (`make run`): the SSO
    tests start theirs on loopback. Tests marked `sdk` also get the distributed run
    (testing/local_run.py), once for the session."""
    if getattr(request, "param", ALL_IN_ONE) == DISTRIBUTED:
        yield (await local_run.get())[1]
        return
    async with running_platform(
        infra,
        tmp_path_factory.mktemp("platform"),
        trusted_proxies=("127.0.0.1/32",),
        sso_allow_insecure=True,
    ) as running:
        yield running


@pytest.fixture
def mailbox(platform: RunningPlatform) -> Mailbox:
    """The mail the session's platform sent, read from its development mail sink over HTTP."""
    return Mailbox(platform.api_url)
