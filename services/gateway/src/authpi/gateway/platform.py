"""The all-in-one process: embedded (or configured) PostgreSQL and NATS, migrations, every
service's parts, one relay per service schema, every projection consumer, and the two HTTP ports.
The same code path as the distributed topology: events still go store -> relay -> JetStream.
With `idp_workers` > 1 it also starts and supervises the IdP worker processes (workers.py)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec
import uvicorn
from psycopg_pool import AsyncConnectionPool

from authpi.config import Settings
from authpi.crypto.clock import Clock, SystemClock
from authpi.crypto.envelope import Kek, b64e, new_key
from authpi.crypto.ids import Ids, RandomIds
from authpi.embedded.servers import EmbeddedNats, EmbeddedPostgres
from authpi.eventstore import jsonb
from authpi.eventstore.migrations import migrate
from authpi.eventstore.relay import Relay
from authpi.gateway.supervisor import supervise
from authpi.messaging.consumer import ProjectionConsumer
from authpi.messaging.streams import connect, ensure_streams
from authpi.observability import get_logger
from authpi.web.app import WebApp, build_app
from authpi.web.openapi import IDP_ERRORS
from authpi.web.runtime import Runtime, ServiceModule, ServiceParts

if TYPE_CHECKING:
    from authpi.gateway.workers import WorkerPool

log = get_logger("authpi.platform")


def all_modules() -> list[ServiceModule]:
    from authpi.agent.service import MODULE as AGENT
    from authpi.billing.service import MODULE as BILLING
    from authpi.directory.service import MODULE as DIRECTORY
    from authpi.gateway.service import MODULE as GATEWAY
    from authpi.token.service import MODULE as TOKEN
    from authpi.webhook.service import MODULE as WEBHOOK

    return [DIRECTORY, TOKEN, AGENT, BILLING, WEBHOOK, GATEWAY]


class HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling: the platform owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def, override]
        yield


def http_config(app: Any, *, headers: Sequence[tuple[str, str]] = ()) -> uvicorn.Config:
    """uvicorn for a port served inside the process's own (uvloop) event loop: httptools, no
    access log (the request-context layer counts requests), no `server: uvicorn` header."""
    return uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="on", loop="none", http="httptools",
        timeout_keep_alive=30, timeout_graceful_shutdown=10, server_header=False,
        headers=list(headers),
    )  # fmt: skip


def settle_heap() -> None:
    """After start-up: move everything built so far out of the collector's sight and collect
    the young generation less often. Request handling allocates many short-lived objects; with
    the default thresholds the collector keeps re-walking the long-lived caches and modules,
    which shows up as latency spikes."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 50)


async def start_server(server: HttpServer, sock: socket.socket, name: str) -> asyncio.Task[None]:
    """Serve on an already bound socket; return once uvicorn accepts connections."""
    task = asyncio.create_task(server.serve(sockets=[sock]), name=name)
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError(f"{name} stopped while starting")
        await asyncio.sleep(0.01)
    return task


def build_idp_app(parts: Sequence[ServiceParts], ready: Any) -> WebApp:
    routes = [r for p in parts for r in p.idp_routes]
    return build_app(
        name="idp",
        route_handlers=routes,
        ready=ready,
        openapi_title="AuthPI IdP API",
        errors=IDP_ERRORS,
    )


def idp_headers(settings: Settings) -> list[tuple[str, str]]:
    """`X-Authpi-Worker: <pid>` on IdP responses when `worker_header` is on (tests, debugging)."""
    return [("X-Authpi-Worker", str(os.getpid()))] if settings.worker_header else []


def _bind(url: str) -> socket.socket:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port if parts.port is not None else (443 if parts.scheme == "https" else 80)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and without it
    # a response written in two parts waits out the client's delayed ACK (~40 ms) under the
    # standard loop. uvloop sets it anyway; TCP_NODELAY here is inherited by accepted sockets.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class Platform:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        ids: Ids | None = None,
        modules: Sequence[ServiceModule] | None = None,
        kek: Kek | None = None,
        serve_http: bool = True,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.ids = ids or RandomIds()
        self.modules = list(modules) if modules is not None else all_modules()
        self._kek = kek
        self.serve_http = serve_http
        self.stop_event = asyncio.Event()
        self.stack = contextlib.AsyncExitStack()
        self.tasks: list[asyncio.Task[None]] = []
        self.relays: list[Relay] = []
        self.consumers: list[ProjectionConsumer] = []
        self.parts: list[ServiceParts] = []
        self.servers: list[HttpServer] = []
        self.api_url = settings.api_url
        self.idp_url = settings.idp_url
        self.rt: Runtime | None = None
        self._nats_url = ""
        self._kek_text: str | None = None
        self._sockets: list[socket.socket] = []
        self.workers: WorkerPool | None = None

    async def start(self) -> None:
        """Everything: prepare, then relays, consumers, background tasks and the HTTP ports."""
        try:
            await self._prepare()
            assert self.rt is not None
            self._start_background(self.rt)
            await self._wait_running()
            self._write_runtime_file(self.rt.dsn, self._nats_url)
            if self.serve_http:
                await self._serve()
                await self._start_workers(self.rt.dsn)
        except BaseException:
            await self.stop()
            raise
        log.info(
            "platform.started", api_url=self.api_url, idp_url=self.idp_url,
            loop=type(asyncio.get_running_loop()).__module__,
            idp_workers=self.settings.idp_workers if self.workers else 1,
        )  # fmt: skip

    async def prepare(self) -> None:
        """Servers, migrations and service parts only: for one-off commands beside a running
        deployment (bootstrap, replay), which must not start a second relay or consumer."""
        try:
            await self._prepare()
        except BaseException:
            await self.stop()
            raise

    async def _prepare(self) -> None:
        s = self.settings
        dsn, nats_url = s.database_url, s.nats_url
        if not dsn:
            pg = EmbeddedPostgres(s.data_dir / "postgres")
            dsn = await asyncio.to_thread(pg.start)
            self.stack.callback(pg.stop)
        if not nats_url:
            nats = EmbeddedNats(s.data_dir / "nats")
            nats_url = await asyncio.to_thread(nats.start)
            self.stack.callback(nats.stop)
        jsonb.install()
        pool = AsyncConnectionPool(dsn, min_size=2, max_size=16, open=False, timeout=10)
        await pool.open(wait=True)
        self.stack.push_async_callback(pool.close)
        async with pool.connection() as conn:
            await conn.set_autocommit(True)
            for module in self.modules:
                await migrate(conn, f"{s.namespace}_{module.name}", module.migrations)
        nc = await connect(nats_url)
        self.stack.push_async_callback(nc.close)
        js = nc.jetstream()
        await ensure_streams(js, s.namespace)
        if self.serve_http:
            s = self._bind_ports(s)
        rt = Runtime(s, dsn, pool, nc, js, self.clock, self.ids, self._kek or self._load_kek())
        self.rt = rt
        self.parts = [await module.build(rt) for module in self.modules]
        self._nats_url = nats_url

    def _load_kek(self) -> Kek:
        if self.settings.kek:
            self._kek_text = self.settings.kek
            return Kek.from_text(self.settings.kek)
        path = self.settings.data_dir / "kek"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(b64e(new_key()))
        self._kek_text = path.read_text().strip()
        return Kek.from_text(self._kek_text)

    def _start_background(self, rt: Runtime) -> None:
        for module in self.modules:
            relay = Relay(rt.dsn, rt.schema(module.name), module.name, rt.js, rt.namespace)
            self.relays.append(relay)
            self._spawn(f"relay:{module.name}", relay.run)
        for parts in self.parts:
            for projection in parts.projections:
                consumer = ProjectionConsumer(
                    js=rt.js, pool=rt.pool, dsn=rt.dsn, projection=projection,
                    namespace=rt.namespace,
                )  # fmt: skip
                self.consumers.append(consumer)
                self._spawn(f"consumer:{projection.name}", consumer.run)
            for name, task in [*parts.tasks, *parts.worker_tasks]:
                self._spawn(name, task)

    def _spawn(self, name: str, task: Any) -> None:
        self.tasks.append(asyncio.create_task(supervise(name, task, self.stop_event), name=name))

    async def _wait_running(self, timeout: float = 30.0) -> None:
        events = [(f"relay:{r.schema}", r.running) for r in self.relays]
        events += [(f"consumer:{c.projection.name}", c.running) for c in self.consumers]
        events += [(f"warm:{p.name}", e) for p in self.parts for e in p.warm]
        try:
            await asyncio.wait_for(asyncio.gather(*(e.wait() for _, e in events)), timeout)
        except TimeoutError:
            late = [name for name, e in events if not e.is_set()]
            raise TimeoutError(f"not running after {timeout:.0f}s: {', '.join(late)}") from None

    async def ready(self) -> dict[str, bool]:
        """The deployment: this process, and its IdP workers when it has any."""
        checks = await self.process_ready()
        if self.workers is not None:
            checks["idp_workers"] = self.workers.healthy()
        return checks

    async def process_ready(self) -> dict[str, bool]:
        """This process only: what the IdP port reports, as every IdP worker does for itself."""
        checks = {"database": False, "nats": False, "consumers": False}
        if self.rt is None:
            return checks
        with contextlib.suppress(Exception):
            async with self.rt.pool.connection(timeout=2) as conn:
                await conn.execute("SELECT 1")
            checks["database"] = True
        checks["nats"] = self.rt.nc.is_connected
        workers = [r.running for r in self.relays] + [c.running for c in self.consumers]
        checks["consumers"] = all(e.is_set() for e in workers) and not any(
            t.done() for t in self.tasks
        )
        return checks

    def core_app(self) -> WebApp:
        """The Core API behind the gateway's layers; never served without them."""
        routes = [r for p in self.parts for r in p.core_routes]
        gateway = next((p.exports["gateway"] for p in self.parts if "gateway" in p.exports), None)
        if gateway is None:
            raise RuntimeError("the Core API is served only with the gateway module")
        return gateway.core_app(routes, self.ready)  # type: ignore[no-any-return]

    def idp_app(self) -> WebApp:
        return build_idp_app(self.parts, self.process_ready)

    def _bind_ports(self, s: Settings) -> Settings:
        """Bind both ports before the services are built, so that a port chosen by the system
        (port 0) is known to everything that renders a URL (issuer URLs, bootstrap.json)."""
        bound: list[str] = []
        for url in (s.api_url, s.idp_url):
            sock = _bind(url)
            self.stack.callback(sock.close)
            self._sockets.append(sock)
            parts = urlsplit(url)
            if parts.port == 0:
                url = f"{parts.scheme}://{parts.hostname}:{sock.getsockname()[1]}"
            bound.append(url)
        self.api_url, self.idp_url = bound
        self.settings = msgspec.structs.replace(s, api_url=bound[0], idp_url=bound[1])
        return self.settings

    async def _serve(self) -> None:
        configs = (
            (http_config(self.core_app()), "api_url"),
            (http_config(self.idp_app(), headers=idp_headers(self.settings)), "idp_url"),
        )
        for sock, (config, attr) in zip(self._sockets, configs, strict=True):
            server = HttpServer(config)
            self.servers.append(server)
            self.tasks.append(await start_server(server, sock, f"http:{attr}"))

    async def _start_workers(self, dsn: str) -> None:
        """IdP workers 2..N on the IdP socket, with this deployment's servers and KEK."""
        if self.settings.idp_workers <= 1:
            return
        from authpi.gateway.workers import WorkerPool

        if self._kek_text is None:
            raise RuntimeError("IdP workers need the KEK from settings or the data directory")
        resolved = msgspec.structs.replace(
            self.settings, database_url=dsn, nats_url=self._nats_url, kek=self._kek_text
        )
        self.workers = WorkerPool(
            resolved, [m.name for m in self.modules], self._sockets[1],
            self.settings.idp_workers - 1,
        )  # fmt: skip
        await self.workers.start()

    def _write_runtime_file(self, dsn: str, nats_url: str) -> None:
        """Where a running deployment's servers are, for `authpi bootstrap` and `authpi replay`."""
        path = self.settings.data_dir / "runtime.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, {"database_url": dsn, "nats_url": nats_url, "pid": os.getpid()})
        self.stack.callback(lambda: path.unlink(missing_ok=True))

    async def stop(self) -> None:
        self.stop_event.set()
        if self.workers is not None:
            await self.workers.stop()
        for server in self.servers:
            server.should_exit = True
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks, timeout=10)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.stack.aclose()
        log.info("platform.stopped")


def write_private(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON readable by the owner only (0600), atomically."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(payload, f, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
