"""`authpi up` as a subprocess of its own, on free ports, bootstrapped and ready: for benchmarks
and for tests in which a crash of the platform must show as a failure, not take the test down."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncGenerator
from pathlib import Path

import httpx

from authpi.testing.infra import Infra, new_namespace, start_infra


class Running:
    def __init__(self, proc: asyncio.subprocess.Process, creds: dict[str, str]) -> None:
        self.proc = proc
        self.creds = creds
        self.api_url = creds["api_url"]
        self.idp_url = creds["idp_url"]


@contextlib.asynccontextmanager
async def platform_process(
    workers: int | None,
    data_dir: Path,
    servers: Infra | None = None,
    settings: dict[str, str] | None = None,
    *,
    namespace: str | None = None,
) -> AsyncGenerator[Running, None]:
    """`authpi up` on free ports, with `workers` IdP processes (None: the shipped default, one per
    core), against PostgreSQL and NATS of its own (or `servers`, e.g. a test session's, which
    stay up afterwards); `settings` adds AUTHPI_* variables (e.g. AUTHPI_BILLING_METERING).
    `namespace` and the same `data_dir` again restart a platform on its data (after a crash too:
    the runtime file's pid tells the new run)."""
    infra = servers or start_infra()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPI_")}
    env.update(
        AUTHPI_DATA_DIR=str(data_dir / ".authpi"), AUTHPI_DATABASE_URL=infra.dsn,
        AUTHPI_NATS_URL=infra.nats_url, AUTHPI_NAMESPACE=namespace or new_namespace(),
        AUTHPI_API_URL="http://127.0.0.1:0", AUTHPI_IDP_URL="http://127.0.0.1:0",
        AUTHPI_OPS_URL="http://127.0.0.1:0", AUTHPI_LOG_FORMAT="json",
        AUTHPI_LOG_LEVEL="warning", AUTHPI_RATE_LIMIT_MULTIPLIER="1000",
    )  # fmt: skip
    if workers is not None:
        env["AUTHPI_IDP_WORKERS"] = str(workers)
    env.update(settings or {})
    log_path = data_dir / "authpi-up.log"
    with open(log_path, "ab") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "authpi.platform.cli", "up", env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:
        boot = data_dir / ".authpi" / "bootstrap.json"
        deadline = time.monotonic() + 180
        while not boot.exists() or _runtime(data_dir).get("pid") != proc.pid:
            if proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"authpi up did not start; see {log_path}")
            await asyncio.sleep(0.2)
        running = Running(proc, json.loads(boot.read_text()))
        ops_url = _runtime(data_dir)["ops_url"]
        async with httpx.AsyncClient(timeout=5) as http:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{ops_url}/readyz")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"authpi up is not ready; see {log_path}")
                await asyncio.sleep(0.2)
        yield running
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if servers is None:
            infra.close()


def _runtime(data_dir: Path) -> dict[str, object]:
    """The running platform's runtime.json (a stale one survives a SIGKILL; its pid tells)."""
    try:
        return json.loads((data_dir / ".authpi" / "runtime.json").read_text())
    except (OSError, ValueError):
        return {}
