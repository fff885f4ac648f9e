"""The distributed topology on this machine, for tests and measurements: `authpi serve gateway`
and one `authpi serve <service>` process per service, each on ports of its own, on the test
infrastructure's PostgreSQL and NATS, then bootstrapped with `authpi bootstrap --json`. Every
process is real; nothing is shared but the database, the bus and the configuration."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from authpi.embedded.servers import free_port
from authpi.testing.infra import Infra, new_namespace

SERVICES = ("directory", "token", "agent", "billing", "webhook")
START_TIMEOUT_S = 180.0


@dataclass
class Distributed:
    api_url: str  # the gateway's Core API port
    idp_url: str  # the token process's IdP port
    internal: dict[str, str]  # service -> its internal listener
    ops: dict[str, str]  # process -> its operations port
    namespace: str
    kek: str
    account_id: str = ""
    api_key_id: str = ""
    api_key_secret: str = ""
    data_dir: Path = Path()
    processes: dict[str, subprocess.Popen[bytes]] = field(
        default_factory=dict[str, "subprocess.Popen[bytes]"]
    )
    # Each process's environment (its settings), by process name.
    envs: dict[str, dict[str, str]] = field(default_factory=dict[str, dict[str, str]])


def _url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def _environment(infra: Infra, ns: str, kek: str, api_url: str, idp_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPI_")}
    env.update(
        AUTHPI_DATABASE_URL=infra.dsn, AUTHPI_NATS_URL=infra.nats_url, AUTHPI_NAMESPACE=ns,
        AUTHPI_KEK=kek, AUTHPI_API_URL=api_url, AUTHPI_IDP_URL=idp_url,
        AUTHPI_LOG_FORMAT="json", AUTHPI_LOG_LEVEL="warning",
    )  # fmt: skip
    if infra.nats_credentials is not None:
        env["AUTHPI_NATS_CREDENTIALS_FILE"] = str(infra.nats_credentials)
    return env


def _spawn(run: Distributed, name: str, service: str, env: Mapping[str, str]) -> None:
    """`authpi serve <service>` as process `name`."""
    (run.data_dir / name).mkdir(parents=True, exist_ok=True)
    log = (run.data_dir / f"{name}.log").open("wb")
    command = [sys.executable, "-m", "authpi.platform.cli", "serve", service]
    run.envs[name] = {**env, "AUTHPI_DATA_DIR": str(run.data_dir / name)}
    run.processes[name] = subprocess.Popen(
        command, env=run.envs[name], stdout=log, stderr=subprocess.STDOUT
    )


async def add_replica(run: Distributed, service: str, **settings: str) -> str:
    """One more `authpi serve <service>` with the first one's settings (so on the same ports,
    shared with SO_REUSEPORT) but an operations port of its own, once ready; its name."""
    name = f"{service}-{len(run.processes)}"
    run.ops[name] = _url()
    _spawn(run, name, service, {**run.envs[service], **settings, "AUTHPI_OPS_URL": run.ops[name]})
    await _ready(run, run.data_dir, only=name)
    return name


async def _ready(run: Distributed, data_dir: Path, only: str | None = None) -> None:
    """Until every process (or `only`) answers /readyz with 200; one that exits fails."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_S
    waiting = {n: url for n, url in run.ops.items() if only in (None, n)}
    async with httpx.AsyncClient(timeout=2) as client:
        while waiting:
            for name, url in list(waiting.items()):
                if run.processes[name].poll() is not None:
                    tail = (data_dir / f"{name}.log").read_text()[-3000:]
                    raise RuntimeError(f"authpi serve {name} exited:\n{tail}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/readyz")).status_code == 200:
                        del waiting[name]
            if loop.time() > deadline:
                raise TimeoutError(f"not ready after {START_TIMEOUT_S:.0f}s: {sorted(waiting)}")
            await asyncio.sleep(0.2)


async def _bootstrap(run: Distributed, env: Mapping[str, str], data_dir: Path) -> None:
    """`authpi bootstrap --json`, then until the gateway knows the new key (its cache follows
    the directory's events, published by the directory process's relay)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "authpi.platform.cli", "bootstrap", "--json",
        env={**env, "AUTHPI_DATA_DIR": str(data_dir / "bootstrap")},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"authpi bootstrap failed: {err.decode()[-3000:]}")
    creds = json.loads(out)
    run.account_id = creds["account_id"]
    run.api_key_id, run.api_key_secret = creds["api_key_id"], creds["api_key_secret"]
    auth = (run.api_key_id, run.api_key_secret)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    async with httpx.AsyncClient(timeout=5, auth=auth) as client:
        while (await client.get(f"{run.api_url}/v1/accounts/{run.account_id}")).status_code != 200:
            if loop.time() > deadline:
                raise TimeoutError("the gateway never learnt the bootstrap key")
            await asyncio.sleep(0.1)


def _stop(processes: Mapping[str, subprocess.Popen[bytes]]) -> None:
    for proc in processes.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in processes.values():
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.asynccontextmanager
async def distributed(
    infra: Infra, data_dir: Path, gateway_env: Mapping[str, str] | None = None
) -> AsyncIterator[Distributed]:
    """The gateway and every service, each its own `authpi serve` process, bootstrapped.
    `gateway_env`: extra settings of the gateway process (rate limits, trusted proxies)."""
    ns = new_namespace()
    kek = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    run = Distributed(
        api_url=_url(), idp_url=_url(), internal={s: _url() for s in SERVICES},
        ops={s: _url() for s in ("gateway", *SERVICES)}, namespace=ns, kek=kek,
        data_dir=data_dir,
    )  # fmt: skip
    env = _environment(infra, ns, kek, run.api_url, run.idp_url)
    # The gateway forwards to every service; the token service calls the directory's commands.
    env["AUTHPI_SERVICE_URLS"] = ",".join(f"{n}={url}" for n, url in run.internal.items())
    try:
        gateway = {**env, **(gateway_env or {})}
        _spawn(run, "gateway", "gateway", {**gateway, "AUTHPI_OPS_URL": run.ops["gateway"]})
        for name in SERVICES:
            own = {"AUTHPI_INTERNAL_URL": run.internal[name], "AUTHPI_OPS_URL": run.ops[name]}
            _spawn(run, name, name, {**env, **own})
        await _ready(run, data_dir)
        await _bootstrap(run, env, data_dir)
        yield run
    finally:
        await asyncio.to_thread(_stop, run.processes)
