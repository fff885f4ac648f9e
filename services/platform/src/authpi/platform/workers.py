"""IdP worker processes for the all-in-one topology (DESIGN.md 5).

With `idp_workers` = N > 1 the main process (the Platform: relays, projection consumers,
singleton tasks, both ports) starts N-1 IdP workers. Each inherits the IdP listening socket
(`pass_fds`, so a port-0 bind keeps working) and accepts beside the main process on sockets of
its own in the port's SO_REUSEPORT group (WORKER_LISTENERS of them, the main process one): the
kernel spreads new connections over the group's sockets.

A worker connects to the deployment's PostgreSQL and NATS, checks (never applies) migrations,
builds every module's ServiceParts with the same Runtime shape (wired together as in the main
process, `modules.wire`), runs ONLY the worker tasks (the in-memory caches, each following its
own ordered consumer), waits until all are warm and then serves the IdP app. No relay,
projection consumer or singleton task runs in a worker.

What a worker needs, the KEK included, reaches it on its stdin as one JSON document: never on
the command line nor in its environment. It reports `ready` on its stdout (a pipe to the main
process; its own stray output goes to stderr). It dies with the main process (PR_SET_PDEATHSIG),
stops cleanly on SIGTERM, and the main process restarts a worker that dies."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
from pathlib import Path
from typing import IO, Any

import msgspec
from nats.aio.client import Client as NATS
from psycopg_pool import AsyncConnectionPool

from authpi.config import Settings
from authpi.crypto.clock import SystemClock
from authpi.crypto.envelope import Kek
from authpi.crypto.ids import RandomIds
from authpi.eventstore import jsonb
from authpi.messaging import auth as nats_auth
from authpi.messaging.streams import connect, jetstream
from authpi.observability import configure_logging, get_logger
from authpi.platform.database import check_applied
from authpi.platform.modules import all_modules, prepared, wire
from authpi.platform.serving import (
    HttpServer,
    build_idp_app,
    connection_checks,
    http_config,
    idp_headers,
    own_listener,
    settle_heap,
    start_server,
)
from authpi.web.calls import Calls
from authpi.web.edge import EdgeSigner, keys_of
from authpi.web.mail import mailer_for
from authpi.web.runtime import Runtime, ServiceParts
from authpi.web.supervisor import supervise

log = get_logger("authpi.idp_worker")

READY_LINE = b"ready\n"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0


# Listening sockets a worker holds in the IdP port's SO_REUSEPORT group, against the main
# process's one: the kernel spreads connections evenly over the group's sockets, so each worker
# takes twice the main process's share. The main process also runs every relay and consumer
# (about a fifth of the server's Python time under code exchanges); with even shares it was the
# one saturated while a worker idled between its batches. Measured with bench_login, 2 cores:
# CPU per exchange at 32 connections 1.29 ms against 1.47 (three alternated runs each), at 128
# the same (0.90 ms).
WORKER_LISTENERS = 2


class WorkerSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a worker is told; `settings` carries the resolved servers and the KEK."""

    settings: Settings
    modules: list[str]
    fd: int  # the inherited IdP listening socket
    parent_pid: int
    # The NATS identity each module's part connects as, as in the main process (host.Platform
    # `identity`); a module not listed connects as itself.
    identities: dict[str, str] = {}


# --- the main process' side --------------------------------------------------------------------


class _Slot:
    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: asyncio.subprocess.Process | None = None
        self.ready = False
        self.ready_once = asyncio.Event()
        self.restarts = 0


class WorkerPool:
    """Starts the IdP workers, restarts one that dies (logged, with back-off), stops them all."""

    def __init__(
        self,
        settings: Settings,
        modules: list[str],
        sock: socket.socket,
        count: int,
        *,
        identities: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings  # resolved: the servers, KEK and SMTP every worker uses
        self._modules = modules
        self._identities = identities or {}
        # A descriptor of our own: uvicorn may close the main process' socket object first.
        self._sock = sock.dup()
        self._slots = [_Slot(i) for i in range(count)]
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, timeout: float = START_TIMEOUT_S) -> None:
        self._tasks = [
            asyncio.create_task(self._run(slot), name=f"idp-worker:{slot.index}")
            for slot in self._slots
        ]
        waits = [asyncio.create_task(s.ready_once.wait()) for s in self._slots]
        try:
            _, pending = await asyncio.wait(waits, timeout=timeout)
        finally:
            for wait in waits:
                wait.cancel()
        if pending:
            raise RuntimeError(f"IdP workers not ready within {timeout:.0f}s")
        log.info("idp_workers.started", count=len(self._slots), pids=self.pids())

    def pids(self) -> list[int]:
        return [s.proc.pid for s in self._slots if s.proc is not None and s.proc.returncode is None]

    def live(self) -> int:
        """Workers running and serving (reported ready, not exited)."""
        return sum(
            1 for s in self._slots if s.ready and s.proc is not None and s.proc.returncode is None
        )

    def healthy(self) -> bool:
        return self.live() == len(self._slots)

    async def _run(self, slot: _Slot) -> None:
        delay = 0.2
        while not self._stopping.is_set():
            try:
                proc = await self._spawn(slot)
            except Exception:
                log.exception("idp_worker.spawn_failed", slot=slot.index)
                proc = None
            if proc is not None:
                if await self._await_ready(proc):
                    slot.ready = True
                    slot.ready_once.set()
                    delay = 0.2
                    log.info("idp_worker.ready", slot=slot.index, pid=proc.pid)
                code = await proc.wait()
                slot.ready = False
                if self._stopping.is_set():
                    return
                log.error(
                    "idp_worker.died", slot=slot.index, pid=proc.pid, returncode=code,
                    restart_in_s=delay,
                )  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            delay = min(delay * 2, 5.0)
            slot.restarts += 1

    async def _spawn(self, slot: _Slot) -> asyncio.subprocess.Process:
        spec = WorkerSpec(
            settings=self.settings, modules=self._modules, fd=self._sock.fileno(),
            parent_pid=os.getpid(), identities=self._identities,
        )  # fmt: skip
        payload = msgspec.json.encode(spec, enc_hook=str)  # Path -> str
        # Spawned from the event-loop (main) thread: PR_SET_PDEATHSIG follows the spawning thread.
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "authpi.platform.workers",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            pass_fds=(self._sock.fileno(),),
        )  # fmt: skip
        slot.proc = proc  # from here on stop() sees it, whatever happens to this task
        assert proc.stdin is not None
        try:
            proc.stdin.write(payload)
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # it died at once; its exit is seen by the caller
        finally:
            proc.stdin.close()
        return proc

    async def _await_ready(self, proc: asyncio.subprocess.Process) -> bool:
        """Its first stdout line is `ready` once it serves; anything else (EOF) is a failed start.
        The rest of the pipe is drained in the background so the worker never blocks on it."""
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        stdout = proc.stdout
        self._tasks.append(asyncio.create_task(_drain(stdout)))
        return line == READY_LINE

    async def stop(self) -> None:
        """No more restarts, then SIGTERM to every worker (SIGKILL after STOP_TIMEOUT_S)."""
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        procs = [s.proc for s in self._slots if s.proc is not None and s.proc.returncode is None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                log.warning("idp_worker.kill", pid=proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        self._sock.close()
        log.info("idp_workers.stopped", count=len(procs))


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(4096):
        pass


# --- the worker's side -------------------------------------------------------------------------


class IdpWorker:
    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.settings = spec.settings
        self.stop_event = asyncio.Event()
        self.stack = contextlib.AsyncExitStack()
        self.parts: list[ServiceParts] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.rt: Runtime | None = None
        self.server: Any = None

    async def start(self) -> None:
        s = self.settings
        if not (s.database_url and s.nats_url and s.kek):
            raise RuntimeError("an IdP worker needs the resolved database, NATS and KEK")
        modules = [m for m in all_modules() if m.name in self.spec.modules]
        jsonb.install()
        pool = AsyncConnectionPool(s.database_url, min_size=1, max_size=8, open=False, timeout=10)
        await pool.open(wait=True)
        self.stack.push_async_callback(pool.close)
        # The main process applied them all before starting any worker: anything missing means
        # this worker runs against another deployment or newer code.
        await check_applied({m.name: pool for m in modules}, s.namespace, s.region, modules)
        auth = nats_auth.load(s.nats_credentials_file) if s.nats_credentials_file else None
        kek = Kek.from_text(s.kek)
        # The main process' SMTP server: AUTHPI_SMTP_URL, or its development sink (none: no mail).
        mailer = mailer_for(s.smtp_url, s.mail_from)
        shared: NATS | None = None
        for module in modules:
            # Each service part follows the bus as its own identity, as in the main process
            # (one shared connection when NATS has no authentication).
            nc = shared or await connect(
                s.nats_url, name=f"authpi-idp-worker-{os.getpid()}-{module.name}", auth=auth,
                identity=self.spec.identities.get(module.name, module.name),
            )  # fmt: skip
            if nc is not shared:
                self.stack.push_async_callback(nc.close)
            shared = nc if auth is None else None
            rt = Runtime(
                s, s.database_url, pool, nc, jetstream(nc), SystemClock(), RandomIds(), kek,
                shared_sync=self.rt.sync if self.rt else None, mailer=mailer,
            )  # fmt: skip
            self.rt = self.rt or rt
            self.parts.append(await prepared(module, rt))
        # Services in other processes (the distributed topology) are called there.
        calls = Calls(dict(s.service_urls), EdgeSigner(keys_of(kek), rt.clock))
        self.stack.push_async_callback(calls.close)
        wire(self.parts, calls)
        for parts in self.parts:
            for name, task in parts.worker_tasks:
                self.tasks.append(
                    asyncio.create_task(supervise(name, task, self.stop_event), name=name)
                )
        # Announced before it serves: from now on every Core API write waits for this process.
        self.tasks.append(
            asyncio.create_task(supervise("sync", rt.sync.run, self.stop_event), name="sync")
        )
        warm = [e.wait() for p in self.parts for e in p.warm]
        warm.append(rt.sync.running.wait())
        await asyncio.wait_for(asyncio.gather(*warm), START_TIMEOUT_S)
        socks = [socket.socket(fileno=self.spec.fd)]
        if socks[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT):
            # Accept on sockets of its own in the port's group (serving.own_listener), bound
            # only now that it is warm: no connection waits on a worker still starting.
            inherited = socks[0]
            socks = [own_listener(inherited) for _ in range(WORKER_LISTENERS)]
            inherited.close()
        for sock in socks:
            self.stack.callback(sock.close)
        app = build_idp_app(self.parts, self.ready, s, rt.clock)
        self.server = HttpServer(http_config(app, s, headers=idp_headers(s)))
        self.tasks.append(await start_server(self.server, socks, "http:idp"))
        settle_heap()

    async def ready(self) -> dict[str, bool]:
        checks = await connection_checks(self.rt)
        if self.rt is None:
            return checks
        warm = all(e.is_set() for p in self.parts for e in p.warm)
        checks["consumers"] = warm and not any(t.done() for t in self.tasks)
        return checks

    async def stop(self) -> None:
        self.stop_event.set()
        if self.server is not None:
            self.server.should_exit = True
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks, timeout=12)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.stack.aclose()


def _dec_path(kind: type, value: Any) -> Any:
    if kind is Path:
        return Path(value)
    raise NotImplementedError(f"cannot decode {kind}")


def _die_with_parent(parent_pid: int) -> None:
    """SIGTERM this worker when the main process dies, even by SIGKILL; and exit at once if it
    died before the request was made."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:
        raise SystemExit(0)


async def serve_worker(spec: WorkerSpec, status: IO[bytes]) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    worker = IdpWorker(spec)
    try:
        await worker.start()
        log.info("idp_worker.serving", pid=os.getpid(), loop=type(loop).__module__)
        status.write(READY_LINE)
        status.close()
        await stop.wait()
        log.info("idp_worker.stopping", pid=os.getpid())
    finally:
        await worker.stop()
    return 0


def main() -> None:
    # fd 1 is the status pipe to the main process: keep it apart, send stray output to stderr.
    status = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    # Ctrl-C reaches the whole process group: the main process decides, and stops us by SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    spec = msgspec.json.decode(sys.stdin.buffer.read(), type=WorkerSpec, dec_hook=_dec_path)
    sys.stdin.close()
    _die_with_parent(spec.parent_pid)
    configure_logging(spec.settings.log_format, spec.settings.log_level)
    import uvloop

    sys.exit(uvloop.run(serve_worker(spec, status)))


if __name__ == "__main__":
    main()
