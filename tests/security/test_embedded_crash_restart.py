"""A crash of `make run` must not leave the embedded servers behind for good: the next start
adopts the PostgreSQL server the crashed one left running, and its clean stop stops it. NATS
dies with its parent."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from authpi.embedded.servers import free_port
from authpi.testing.plugin import eventually


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPI_")}
    env.update(
        AUTHPI_DATA_DIR=str(data_dir),
        AUTHPI_API_URL=f"http://127.0.0.1:{free_port()}",
        AUTHPI_IDP_URL=f"http://127.0.0.1:{free_port()}",
        AUTHPI_OPS_URL="http://127.0.0.1:0",
        AUTHPI_LOG_FORMAT="json",
        AUTHPI_IDP_WORKERS="1",  # one process serves: these tests are not about IdP workers
    )
    return env


async def _up(data_dir: Path) -> asyncio.subprocess.Process:
    """`authpi up` as `make run` runs it (embedded servers), in its own process group; returns
    once it printed "AuthPI is up"."""
    log = data_dir.parent / "up.log"
    with log.open("ab") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "authpi.platform.cli", "up", env=_env(data_dir),
            stdout=asyncio.subprocess.PIPE, stderr=err, start_new_session=True,
        )  # fmt: skip
    assert proc.stdout is not None
    while True:
        line = await asyncio.wait_for(proc.stdout.readline(), 180)
        assert line, f"authpi up exited while starting: {log.read_text()[-3000:]}"
        if line.startswith(b"AuthPI is up"):
            return proc


def _servers_on(data_dir: Path) -> list[bytes]:
    """Command lines of every live process naming the data folder (postgres, nats-server)."""
    needle = str(data_dir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmdline and state != "Z":
            found.append(cmdline)
    return found


async def _postgres_running(data_dir: Path) -> bool:
    return any(b"postgres" in cmdline for cmdline in _servers_on(data_dir))


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data folder outside pytest's base temp dir: run as root, the embedded PostgreSQL runs
    as its own user and must traverse to it, and a concurrent pytest run resets that dir to 0700."""
    root = Path(tempfile.mkdtemp(prefix="authpi-crash-"))
    yield root / ".authpi"
    shutil.rmtree(root, ignore_errors=True)


async def test_clean_stop_after_crash_leaves_no_server_behind(data_dir):
    crashed = await _up(data_dir)
    os.killpg(crashed.pid, signal.SIGKILL)
    await crashed.wait()
    assert await _postgres_running(data_dir)  # the crash left it behind

    restarted = await _up(data_dir)
    restarted.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(restarted.wait(), 90)

    assert code == 0
    assert _servers_on(data_dir) == []
    assert not (data_dir / "postgres" / "postmaster.pid").exists()


async def test_nats_dies_with_a_killed_platform(data_dir):
    crashed = await _up(data_dir)
    try:
        os.kill(crashed.pid, signal.SIGKILL)  # the process alone, not its group
        await crashed.wait()

        async def nats_gone() -> bool:
            return not any(b"nats-server" in cmdline for cmdline in _servers_on(data_dir))

        await eventually(nats_gone, timeout=30)
    finally:
        restarted = await _up(data_dir)  # adopts what is left, then stops all of it
        restarted.send_signal(signal.SIGTERM)
        await asyncio.wait_for(restarted.wait(), 90)
    assert _servers_on(data_dir) == []
