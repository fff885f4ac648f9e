"""`authpi up` with AUTHPI_IDP_WORKERS=2 (DESIGN.md 5): the main process and one IdP worker accept
on the same IdP socket (bound to port 0 by the main process, inherited by the worker), every
process's key cache follows new issuers, a killed worker is restarted, and SIGTERM to the main
process (or its death) leaves no worker behind. Runs against the session's PostgreSQL and NATS in
a namespace of its own; `AUTHPI_WORKER_HEADER` makes each IdP response name the process."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from authpi_admin import AuthPIAdmin

from authpi.config import available_cores, from_env
from authpi.testing.infra import Infra, new_namespace
from authpi.testing.plugin import eventually

WORKERS = 2  # processes serving the IdP port: the main process and one worker
WORKER = "x-authpi-worker"


class Deployment:
    def __init__(self, proc: asyncio.subprocess.Process, data_dir: Path) -> None:
        self.proc = proc
        self.data_dir = data_dir
        self.creds: dict[str, str] = {}

    @property
    def api_url(self) -> str:
        return self.creds["api_url"]

    @property
    def idp_url(self) -> str:
        return self.creds["idp_url"]

    @property
    def ops_url(self) -> str:
        return json.loads((self.data_dir / "runtime.json").read_text())["ops_url"]

    def workers(self) -> set[int]:
        """The IdP workers: the main process's live children that run `authpi.platform.workers`
        (PostgreSQL and NATS are external; the token service's key child is no worker)."""
        return {
            pid
            for pid, ppid, state in _processes()
            if ppid == self.proc.pid and state != "Z" and _runs(pid, b"authpi.platform.workers")
        }

    def admin(self) -> AuthPIAdmin:
        return AuthPIAdmin(
            api_key=(self.creds["api_key_id"], self.creds["api_key_secret"]),
            account_id=self.creds["account_id"], base_url=self.api_url, retries=False,
        )  # fmt: skip


def _runs(pid: int, module: bytes) -> bool:
    """Whether process `pid` runs `python -m <module>` (its command line, from /proc)."""
    try:
        return module in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False


def _processes() -> list[tuple[int, int, str]]:
    """(pid, ppid, state) of every process, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces
            found.append((int(entry), int(fields[1]), fields[0]))
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie awaiting its reaper does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@contextlib.asynccontextmanager
async def deployment(infra: Infra, tmp_path: Path) -> AsyncIterator[Deployment]:
    """`authpi up` as a subprocess with every port on 0; ready once the ops port's /readyz (which
    counts the IdP workers) answers 200."""
    data_dir = tmp_path / ".authpi"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPI_")}
    env.update(
        AUTHPI_DATA_DIR=str(data_dir), AUTHPI_DATABASE_URL=infra.dsn,
        AUTHPI_NATS_URL=infra.nats_url, AUTHPI_NAMESPACE=new_namespace(),
        AUTHPI_API_URL="http://127.0.0.1:0", AUTHPI_IDP_URL="http://127.0.0.1:0",
        AUTHPI_OPS_URL="http://127.0.0.1:0", AUTHPI_IDP_WORKERS=str(WORKERS),
        AUTHPI_WORKER_HEADER="1", AUTHPI_LOG_FORMAT="json",
        AUTHPI_RATE_LIMIT_MULTIPLIER="1000",
    )  # fmt: skip
    with open(tmp_path / "authpi-up.log", "wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "authpi.platform.cli", "up", env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    up = Deployment(proc, data_dir)
    try:
        boot = data_dir / "bootstrap.json"

        async def bootstrapped() -> bool:
            if proc.returncode is not None:
                tail = (tmp_path / "authpi-up.log").read_text()[-3000:]
                raise AssertionError(f"authpi up exited with {proc.returncode}:\n{tail}")
            return boot.exists()

        await eventually(bootstrapped, timeout=180, interval=0.2)
        up.creds = json.loads(boot.read_text())
        async with httpx.AsyncClient(timeout=5) as http:
            await eventually(lambda: _ready(http, up.ops_url), timeout=60)
        yield up
    finally:
        if proc.returncode is None:
            workers = up.workers()
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                for pid in [proc.pid, *workers]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                await proc.wait()


async def _ready(http: httpx.AsyncClient, ops_url: str) -> bool:
    try:
        resp = await http.get(f"{ops_url}/readyz")
    except httpx.HTTPError:
        return False
    return resp.status_code == 200 and resp.json()["checks"].get("idp_workers") is True


async def _spread(url: str, n: int = 24) -> list[httpx.Response]:
    """`n` concurrent requests, each on a new connection, so the kernel hands them to whichever
    processes accept first."""

    async def one() -> httpx.Response:
        async with httpx.AsyncClient(timeout=10) as http:
            return await http.get(url, headers={"Connection": "close"})

    return await asyncio.gather(*(one() for _ in range(n)))


async def _new_issuer(up: Deployment, name: str) -> str:
    async with up.admin() as admin:
        issuer = await admin.issuers.create({"name": name})
    return str(issuer.id)


def _has_keys(resp: httpx.Response) -> bool:
    return resp.status_code == 200 and len(resp.json()["keys"]) == 3


async def test_workers_die_with_the_main_process(infra, tmp_path):
    """First in this module, before its shared deployment starts: one deployment at a time
    (each holds some 30 PostgreSQL connections)."""
    async with deployment(infra, tmp_path) as up:
        workers = up.workers()
        assert len(workers) == WORKERS - 1
        up.proc.kill()  # no clean stop: PR_SET_PDEATHSIG delivers SIGTERM to each worker
        await up.proc.wait()

        async def all_gone() -> bool:
            return not any(_alive(pid) for pid in workers)

        await eventually(all_gone, timeout=60)


@pytest.fixture(scope="module")
async def up(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    async with deployment(infra, tmp_path_factory.mktemp("idp-workers")) as running:
        yield running


async def test_idp_requests_are_served_by_more_than_one_process(up):
    workers = up.workers()
    assert len(workers) == WORKERS - 1
    issuer_id = await _new_issuer(up, "spread")
    url = f"{up.idp_url}/{issuer_id}/jwks.json"
    seen: set[int] = set()

    async def several() -> bool:
        for resp in await _spread(url):
            if _has_keys(resp):
                seen.add(int(resp.headers[WORKER]))
        return len(seen) > 1

    await eventually(several, timeout=30)
    assert seen == {up.proc.pid, *workers}
    async with httpx.AsyncClient(timeout=5) as http:
        # Every process answers for itself on the public port; readiness is the ops port's.
        assert (await http.get(f"{up.idp_url}/healthz")).status_code == 200
        assert (await http.get(f"{up.idp_url}/readyz")).status_code == 404


async def test_new_issuer_reaches_every_process_promptly(up):
    processes = {up.proc.pid, *up.workers()}
    issuer_id = await _new_issuer(up, "fresh")
    url = f"{up.idp_url}/{issuer_id}/jwks.json"
    served: set[int] = set()

    async def by_any() -> bool:  # the event's way: directory -> relay -> JetStream -> token
        served.update(int(r.headers[WORKER]) for r in await _spread(url, 4) if _has_keys(r))
        return bool(served)

    await eventually(by_any, timeout=30)

    async def by_all() -> bool:
        served.update(int(r.headers[WORKER]) for r in await _spread(url) if _has_keys(r))
        return served == processes

    # Every process's key cache follows the same notices: once one serves it, all do at once.
    # (The bound only keeps a loaded machine from failing the test; speed is `make bench`'s.)
    await eventually(by_all, timeout=5.0)


async def test_a_killed_worker_is_restarted_and_serves(up):
    (victim,) = up.workers()
    os.kill(victim, signal.SIGKILL)

    async def replaced() -> set[int]:
        now = up.workers()
        return now if len(now) == WORKERS - 1 and victim not in now else set()

    (successor,) = await eventually(replaced, timeout=60)
    async with httpx.AsyncClient(timeout=5) as http:
        await eventually(lambda: _ready(http, up.ops_url), timeout=60)
    issuer_id = await _new_issuer(up, "after-restart")
    url = f"{up.idp_url}/{issuer_id}/jwks.json"

    async def successor_serves() -> bool:
        return any(_has_keys(r) and int(r.headers[WORKER]) == successor for r in await _spread(url))

    await eventually(successor_serves, timeout=30)
    log = (up.data_dir.parent / "authpi-up.log").read_text()
    died = [json.loads(line) for line in log.splitlines() if '"idp_worker.died"' in line]
    assert [(d["pid"], d["returncode"]) for d in died] == [(victim, -signal.SIGKILL)]


# Failed client authentication is throttled per (client, source address): each round of polling
# comes from loopback addresses of its own, so that refusals met while a change is still on its
# way do not throttle the rounds after it.
_SOURCES = (f"127.0.{i // 250 + 1}.{i % 250 + 1}" for i in itertools.count())


async def _spread_token(url: str, client_id: str, secret: str, n: int = 16) -> list[httpx.Response]:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    source = next(_SOURCES)

    async def one() -> httpx.Response:
        transport = httpx.AsyncHTTPTransport(local_address=source)
        async with httpx.AsyncClient(timeout=10, transport=transport) as http:
            return await http.post(url, data=form, headers={"Connection": "close"})

    return await asyncio.gather(*(one() for _ in range(n)))


async def test_client_changes_reach_every_process_promptly(up):
    """Each process's client cache follows client.* events on its own: a rotated secret works,
    and a deleted client is refused, everywhere, moments after the Core API answered. Seeing
    every process takes several rounds of new connections, so the bound is generous; speed is
    `make bench`'s."""
    processes = {up.proc.pid, *up.workers()}
    issuer_id = await _new_issuer(up, "clients")
    url = f"{up.idp_url}/{issuer_id}/token"
    async with up.admin() as admin:
        clients = admin.issuer(issuer_id).clients
        client = await clients.create({"name": "svc", "type": "m2m"})
        served: set[int] = set()

        async def minted_everywhere(secret: str) -> bool:
            responses = await _spread_token(url, client.id, secret)
            served.update(int(r.headers[WORKER]) for r in responses if r.status_code == 200)
            return served == processes

        await eventually(lambda: minted_everywhere(client.secret), timeout=30)
        rotated = await clients.rotate_secret(client.id)
        served.clear()
        await eventually(lambda: minted_everywhere(rotated.secret), timeout=5.0)
        await clients.delete(client.id)
        refused_by: set[int] = set()

        async def refused_everywhere() -> bool:
            responses = await _spread_token(url, client.id, rotated.secret)
            if any(r.status_code == 200 for r in responses):
                refused_by.clear()
                return False
            refused_by.update(int(r.headers[WORKER]) for r in responses)
            return refused_by == processes

        await eventually(refused_everywhere, timeout=5.0)


async def test_sigterm_to_the_main_process_stops_every_worker(up):
    """Last in this module: it ends the module's deployment (the fixture sees it stopped)."""
    workers = up.workers()
    assert len(workers) == WORKERS - 1
    up.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(up.proc.wait(), 60) == 0
    assert [pid for pid in workers if _alive(pid)] == []
    assert not (up.data_dir / "runtime.json").exists()


def test_idp_workers_setting_defaults_to_one_process_per_core_and_refuses_nonsense():
    assert from_env({}).idp_workers == available_cores() and from_env({}).worker_header is False
    settings = from_env({"AUTHPI_IDP_WORKERS": "4", "AUTHPI_WORKER_HEADER": "true"})
    assert settings.idp_workers == 4 and settings.worker_header is True
    for bad in ("0", "-2", "two"):
        with pytest.raises(ValueError, match="AUTHPI_IDP_WORKERS"):
            from_env({"AUTHPI_IDP_WORKERS": bad})
