"""Bootstrap happens once per database, never per start: a pod whose data folder is an
emptyDir (no bootstrap.json) must not mint another all-scopes key, and serving processes
(`authpi serve`) never bootstrap at all."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import psycopg

from authpi.embedded.servers import free_port
from authpi.platform.bootstrap import AccountBootstrap, ensure_bootstrap
from authpi.platform.testing.plugin import running_platform
from authpi.platform.testing.tenants import part
from authpi.testing.infra import Infra, new_namespace


def _env(infra: Infra, data_dir: Path, namespace: str, api: int, idp: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPI_")}
    env.update(
        AUTHPI_DATA_DIR=str(data_dir),
        AUTHPI_DATABASE_URL=infra.dsn,
        AUTHPI_NATS_URL=infra.nats_url,
        AUTHPI_NAMESPACE=namespace,
        AUTHPI_API_URL=f"http://127.0.0.1:{api}",
        AUTHPI_IDP_URL=f"http://127.0.0.1:{idp}",
        AUTHPI_OPS_URL="http://127.0.0.1:0",
        AUTHPI_LOG_FORMAT="json",
        AUTHPI_IDP_WORKERS="1",  # one process serves: these tests are not about IdP workers
    )
    return env


async def _run_until_up(env: dict[str, str], *args: str) -> str:
    """Start `authpi <args>`, wait for its "AuthPI is up" line (printed once start-up, and any
    bootstrap, is over), stop it with SIGTERM; return everything it printed (stdout and logs)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "authpi.platform.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while not any(line.startswith("AuthPI is up") for line in lines):
            line = await asyncio.wait_for(proc.stdout.readline(), 120)
            assert line, f"authpi {' '.join(args)} exited: {''.join(lines)}"
            lines.append(line.decode())
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(proc.communicate(), 60)
    output = "".join(lines) + rest.decode()
    assert proc.returncode == 0, output
    return output


async def _credentials(dsn: str, namespace: str) -> tuple[int, int]:
    """(accounts, API keys) the deployment has ever created, from its event store."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            f"SELECT count(*) FILTER (WHERE type = 'account.created'),"
            f" count(*) FILTER (WHERE type = 'api-key.created')"
            f" FROM {namespace}_directory.events"
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def test_restart_without_bootstrap_file_mints_no_second_key(infra, tmp_path):
    namespace, api, idp = new_namespace(), free_port(), free_port()
    env = _env(infra, tmp_path / "data", namespace, api, idp)
    boot = tmp_path / "data" / "bootstrap.json"

    await _run_until_up(env, "up")
    first = json.loads(boot.read_text())
    assert await _credentials(infra.dsn, namespace) == (1, 1)

    boot.unlink()  # the next pod starts with an empty data folder
    output = await _run_until_up(env, "up")

    assert await _credentials(infra.dsn, namespace) == (1, 1)
    assert not boot.exists()
    assert first["api_key_secret"] not in output
    assert "api_key_secret" not in output


async def test_serve_never_bootstraps(infra, tmp_path):
    namespace, api, idp = new_namespace(), free_port(), free_port()
    env = _env(infra, tmp_path / "data", namespace, api, idp)
    env["AUTHPI_INTERNAL_URL"] = f"http://127.0.0.1:{free_port()}"  # where the gateway calls it

    await _run_until_up(env, "serve", "directory")

    assert await _credentials(infra.dsn, namespace) == (0, 0)
    assert not (tmp_path / "data" / "bootstrap.json").exists()


async def test_bootstrap_command_on_bootstrapped_database_refuses(infra, tmp_path):
    namespace, api, idp = new_namespace(), free_port(), free_port()
    env = _env(infra, tmp_path / "data", namespace, api, idp)
    await _run_until_up(env, "up")
    (tmp_path / "data" / "bootstrap.json").unlink()

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "authpi.platform.cli", "bootstrap", "--json", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)

    assert proc.returncode == 1
    assert b"api_key_secret" not in out
    assert b"already bootstrapped" in err
    assert await _credentials(infra.dsn, namespace) == (1, 1)
    assert not (tmp_path / "data" / "bootstrap.json").exists()


async def test_second_ensure_bootstrap_returns_no_secret(infra, tmp_path):
    async with running_platform(infra, tmp_path) as running:
        directory = next(
            p.exports["directory"] for p in running.handle.parts if "directory" in p.exports
        )
        settings = running.handle.settings
        settings.bootstrap_path.unlink()

        _, content, created = await ensure_bootstrap(
            directory, settings, running.api_url, running.idp_url
        )

        assert (content, created) == (None, False)
        assert not settings.bootstrap_path.exists()
        assert await _credentials(running.dsn, running.namespace) == (1, 1)


async def test_directory_export_answers_what_bootstrap_needs(platform):
    """The host reaches the directory through its two-method bootstrap protocol only."""
    assert isinstance(part(platform, "directory"), AccountBootstrap)


async def test_bootstrap_command_creates_once_and_prints_without_writing(infra, tmp_path):
    namespace, api, idp = new_namespace(), free_port(), free_port()
    env = _env(infra, tmp_path / "data", namespace, api, idp)

    async def bootstrap() -> tuple[int | None, bytes, bytes]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "authpi.platform.cli", "bootstrap", "--json", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        return proc.returncode, out, err

    code, out, err = await bootstrap()
    assert code == 0, err.decode()
    creds = json.loads(out)
    assert creds["api_key_secret"]
    assert not (tmp_path / "data" / "bootstrap.json").exists()  # shown once, on stdout only

    code, out, _ = await bootstrap()
    assert code == 1 and creds["api_key_secret"].encode() not in out
    assert await _credentials(infra.dsn, namespace) == (1, 1)
