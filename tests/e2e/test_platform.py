"""The all-in-one platform as `make run` starts it: both ports ready, bootstrap file written
once, data kept across restarts, and no second account."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys

import httpx
import psycopg

from authpi.config import available_cores
from authpi.crypto.ids import sha256_hex
from authpi.embedded.servers import free_port
from authpi.testing.plugin import eventually


async def test_platform_fixture_serves_health_ready_and_metrics(platform):
    async with httpx.AsyncClient() as http:
        for base in (platform.api_url, platform.idp_url, platform.ops_url):
            assert (await http.get(f"{base}/healthz")).status_code == 200
        ready = await http.get(f"{platform.ops_url}/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": True, "nats": True, "consumers": True}
        assert ready.headers["x-request-id"].startswith("req_")
        metrics = await http.get(f"{platform.ops_url}/metrics")
        assert 'authpi_http_requests_total{method="GET",port="core",status="200"}' in metrics.text
        assert 'port="idp"' in metrics.text


async def test_unknown_route_renders_spec_error_body(platform):
    async with httpx.AsyncClient() as http:
        resp = await http.get(f"{platform.api_url}/v1/nothing-here")
    body = resp.json()
    assert resp.status_code == 404
    assert body["error"] == "not_found" and body["retryable"] is False
    assert body["reference"] == resp.headers["x-request-id"]


async def _up(data_dir, api_port: int, idp_port: int, ops_port: int) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPI_")}
    env.update(
        AUTHPI_DATA_DIR=str(data_dir),
        AUTHPI_API_URL=f"http://127.0.0.1:{api_port}",
        AUTHPI_IDP_URL=f"http://127.0.0.1:{idp_port}",
        AUTHPI_OPS_URL=f"http://127.0.0.1:{ops_port}",
        AUTHPI_LOG_FORMAT="json",
    )
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "authpi.platform.cli", "up", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def _ready(http: httpx.AsyncClient, ops_url: str, *urls: str) -> bool:
    try:
        codes = [(await http.get(f"{u}/healthz")).status_code for u in urls]
        codes.append((await http.get(f"{ops_url}/readyz")).status_code)
    except httpx.HTTPError:
        return False
    return codes == [200] * (len(urls) + 1)


async def _accounts(data_dir) -> tuple[int, int]:
    runtime = json.loads((data_dir / "runtime.json").read_text())
    async with await psycopg.AsyncConnection.connect(runtime["database_url"]) as conn:
        cur = await conn.execute("SELECT count(*) FROM authpi_directory.accounts_view")
        views = (await cur.fetchone())[0]
        cur = await conn.execute(
            "SELECT count(*) FROM authpi_directory.events WHERE type = 'account.created'"
        )
        events = (await cur.fetchone())[0]
    return views, events


async def test_make_run_bootstraps_once_and_restart_keeps_data(tmp_path):
    """`authpi up` exactly as `make run` runs it: embedded PostgreSQL and NATS, no AUTHPI_ URLs,
    and the shipped number of IdP processes (one per core)."""
    data_dir = tmp_path / "deep" / ("x" * 60) / ("y" * 60) / ".authpi"  # socket path > 107 bytes
    api, idp, ops = free_port(), free_port(), free_port()
    urls = (f"http://127.0.0.1:{api}", f"http://127.0.0.1:{idp}")
    ops_url = f"http://127.0.0.1:{ops}"
    async with httpx.AsyncClient(timeout=5) as http:
        for run in (1, 2):
            proc = await _up(data_dir, api, idp, ops)
            try:
                await eventually(lambda: _ready(http, ops_url, *urls), timeout=120, interval=0.2)
                boot = data_dir / "bootstrap.json"
                await eventually(lambda b=boot: _exists(b), timeout=30)
                assert stat.S_IMODE(boot.stat().st_mode) == 0o600
                creds = json.loads(boot.read_text())
                assert set(creds) == {
                    "account_id",
                    "api_key_id",
                    "api_key_secret",
                    "api_url",
                    "idp_url",
                }
                assert (creds["api_url"], creds["idp_url"]) == urls
                if run == 1:
                    first = creds
                else:
                    assert creds == first
                assert await _accounts(data_dir) == (1, 1)
                output = await _read_some(proc)
                assert str(boot) in output and creds["api_key_secret"] not in output
                await _assert_one_idp_process_per_core(http, ops_url, output)
                await _assert_key_stored_as_digest(data_dir, creds)
            finally:
                proc.send_signal(signal.SIGTERM)
                code = await asyncio.wait_for(proc.wait(), 60)
            assert code == 0  # a clean stop on SIGTERM
            assert not (data_dir / "runtime.json").exists()


async def _assert_one_idp_process_per_core(http: httpx.AsyncClient, ops_url: str, output: str):
    checks = (await http.get(f"{ops_url}/readyz")).json()["checks"]
    if available_cores() > 1:
        assert f"({available_cores()} IdP processes)" in output
        assert checks["idp_workers"] is True
    else:
        assert "idp_workers" not in checks


async def _exists(path):
    return path.exists()


async def _read_some(proc) -> str:
    lines = []
    for _ in range(2):
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        lines.append(line.decode())
    return "".join(lines)


async def _assert_key_stored_as_digest(data_dir, creds):
    runtime = json.loads((data_dir / "runtime.json").read_text())
    async with await psycopg.AsyncConnection.connect(runtime["database_url"]) as conn:
        cur = await conn.execute(
            "SELECT secret_sha256 FROM authpi_directory.api_keys_view WHERE id = %s",
            [creds["api_key_id"]],
        )
        assert (await cur.fetchone())[0] == sha256_hex(creds["api_key_secret"])
        cur = await conn.execute(
            "SELECT count(*) FROM authpi_directory.events WHERE data::text LIKE %s",
            ["%" + creds["api_key_secret"] + "%"],
        )
        assert (await cur.fetchone())[0] == 0
