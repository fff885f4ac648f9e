"""A serving process: embedded (or configured) PostgreSQL and NATS, migrations, its modules'
parts, one relay per service schema it owns, its projection consumers, its HTTP ports and the
operations port (`/readyz`, `/metrics`; `AUTHPI_OPS_URL`, loopback by default). With every
module (`authpi up`) it is the all-in-one process; with some (`authpi serve`, modules.
`serving_modules`) one process of the distributed topology. Which ports it serves:

* with the gateway: the Core API (AUTHPI_API_URL), the routes of services in other processes
  forwarded to them (AUTHPI_SERVICE_URLS);
* without it: the internal listener (AUTHPI_INTERNAL_URL) with its services' Core API routes,
  for the gateway's signed requests only;
* with the token service: the IdP API (AUTHPI_IDP_URL).

The same code path in both topologies: events still go store -> relay -> JetStream. Relays,
projection consumers and the services' singleton tasks each hold a session advisory lock, so
replicas of a service run side by side: one copy of each works, the others stand by. With
`idp_workers` > 1 it also starts and supervises the IdP worker processes (workers.py)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
from nats.aio.client import Client as NATS
from psycopg_pool import AsyncConnectionPool

from authpi.config import Settings, read_kek
from authpi.crypto.clock import Clock, SystemClock
from authpi.crypto.envelope import Kek
from authpi.crypto.ids import Ids, RandomIds
from authpi.embedded.servers import EmbeddedNats, EmbeddedPostgres
from authpi.eventstore import jsonb
from authpi.eventstore.locks import run_holding, task_lock
from authpi.eventstore.relay import Relay
from authpi.messaging import auth as nats_auth
from authpi.messaging.consumer import ProjectionConsumer
from authpi.messaging.deadletters import DeadLetterMonitor
from authpi.messaging.facts import DecodedBatches, FactConsumer
from authpi.messaging.streams import connect, ensure_streams, jetstream
from authpi.observability import get_logger
from authpi.platform import database
from authpi.platform.files import write_private
from authpi.platform.kek import check_kek
from authpi.platform.mailsink import MailSink
from authpi.platform.modules import all_modules, prepared, wire
from authpi.platform.serving import (
    HttpServer,
    bind,
    build_core_api_app,
    build_idp_app,
    build_internal_app,
    connection_checks,
    http_config,
    idp_headers,
    offline_runtime,
    start_server,
)
from authpi.platform.workers import WorkerPool
from authpi.web.app import Metrics, WebApp, build_ops_app
from authpi.web.calls import Calls
from authpi.web.edge import EdgeSigner, keys_of
from authpi.web.mail import Mailer, NoMailer, SmtpMailer, is_loopback_host
from authpi.web.runtime import Runtime, ServiceModule, ServiceParts, Task
from authpi.web.supervisor import supervise

log = get_logger("authpi.platform")


# The public ports' own listen settings (Settings.api_listen_url, idp_listen_url).
LISTEN_URLS = {"api_url": "api_listen_url", "idp_url": "idp_listen_url"}


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
        reuse_port: bool = False,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.ids = ids or RandomIds()
        self.modules = list(modules) if modules is not None else all_modules()
        self._kek = kek
        self.serve_http = serve_http
        self.reuse_port = reuse_port  # SO_REUSEPORT on the served ports: replicas share them
        self.stop_event = asyncio.Event()
        self.stack = contextlib.AsyncExitStack()
        self.tasks: list[asyncio.Task[None]] = []
        self.relays: list[Relay] = []
        self.consumers: list[ProjectionConsumer | FactConsumer] = []
        self.parts: list[ServiceParts] = []
        # Built offline, for their routes only: the services the gateway forwards to.
        self.remote_parts: list[ServiceParts] = []
        self.servers: list[HttpServer] = []
        self.api_url = settings.api_url
        self.idp_url = settings.idp_url
        self.ops_url = settings.ops_url
        self.internal_url = settings.internal_url
        self.metrics = Metrics()  # every port of this process counts into it
        self.rt: Runtime | None = None
        self._nats_url = ""
        # NATS credentials by identity (None: the server has no authentication, development)
        self.nats_auth: nats_auth.NatsAuth | None = None
        self.nats_credentials: Path | None = None
        self._connections: dict[str, NATS] = {}
        self.runtimes: dict[str, Runtime] = {}
        # Each service's database URL and pool: all the same one, unless the process connects
        # as a service's own role (then each service connects as its own, database.py).
        self.dsns: dict[str, str] = {}
        self.pools: dict[str, AsyncConnectionPool] = {}
        self._kek_text: str | None = None
        self._sockets: dict[str, socket.socket] = {}
        self.workers: WorkerPool | None = None
        self.dead_letters: DeadLetterMonitor | None = None
        # The development mail sink, when no AUTHPI_SMTP_URL is set and this process serves.
        self.mail_sink: MailSink | None = None
        self.smtp_url = settings.smtp_url  # the sink's once it runs; IdP workers send there too

    async def start(self) -> None:
        """Everything: prepare, then relays, consumers, background tasks and the HTTP ports."""
        try:
            await self._prepare()
            assert self.rt is not None
            await self._start_background(self.rt)
            await self._wait_running()
            self._write_runtime_file(self.rt.dsn, self._nats_url)
            if self.serve_http:
                await self._serve()
                await self._start_workers(self.rt.dsn)
        except BaseException:
            await self.stop()
            raise
        log.info(
            "platform.started", api_url=self.api_url, idp_url=self.idp_url, ops_url=self.ops_url,
            loop=type(asyncio.get_running_loop()).__module__,
            idp_workers=self.settings.idp_workers if self.workers else 1,
        )  # fmt: skip
        self._warn_unrestricted_webhooks()
        if self.mail_sink is not None:
            log.info(
                "mail.captured", read_at=f"{self.api_url}/dev/mail", smtp_url=self.mail_sink.url,
                hint="mail is captured by the development sink, not delivered; "
                "set AUTHPI_SMTP_URL to deliver it",
            )  # fmt: skip

    def _warn_unrestricted_webhooks(self) -> None:
        """`make run` lets webhooks reach plain-http and loopback or private targets
        (platform.md 7.1); a deployment that does so says it at every start."""
        insecure = self.settings.webhooks_allow_insecure
        private = self.settings.webhooks_allow_private
        if insecure or private:
            log.warning(
                "webhooks.targets_unrestricted", allow_insecure=insecure, allow_private=private,
                hint="development only: webhooks may be sent over plain http and/or to "
                "loopback and private addresses; unset AUTHPI_WEBHOOKS_ALLOW_INSECURE and "
                "AUTHPI_WEBHOOKS_ALLOW_PRIVATE in production",
            )  # fmt: skip
        if self.settings.sso_allow_insecure:
            log.warning(
                "sso.insecure_urls_allowed",
                hint="development only: organizations' upstream IdPs may be reached over plain "
                "http; unset AUTHPI_SSO_ALLOW_INSECURE in production",
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
        if s.nats_credentials_file is not None:
            self.nats_auth = nats_auth.load(s.nats_credentials_file)
            self.nats_credentials = s.nats_credentials_file
        if not nats_url:
            # The embedded server enforces generated per-service credentials (mode 0600).
            self.nats_auth, self.nats_credentials, config = nats_auth.embedded(
                s.data_dir, s.namespace
            )
            nats = EmbeddedNats(s.data_dir / "nats", config=config)
            nats_url = await asyncio.to_thread(nats.start)
            self.stack.callback(nats.stop)
        self._nats_url = nats_url
        if self.nats_auth is None:
            log.warning("nats.unauthenticated", hint="development only: set the credentials file")
        jsonb.install()
        pool = await self._pool(dsn, min_size=2)
        names = [m.name for m in self.modules]
        own = await database.own_service(pool, s.namespace, nats_auth.SERVICES)
        self.dsns = {name: dsn for name in names}
        self.pools = {name: pool for name in names}
        if own is None:  # the database owner: the all-in-one topology migrates at every start
            async with pool.connection() as conn:
                await conn.set_autocommit(True)
                await database.migrate_all(conn, s.namespace, s.region, self.owned)
        else:
            # Connected as one service's role (the distributed topology): every other service
            # of this process that owns its store connects as its own role (a part that only
            # reads another's views, the token process's keyinfo, reads them as this process's
            # role: database.SHARED_READS), and nothing is created or migrated.
            for name in (m.name for m in self.owned):
                if name != own:
                    self.dsns[name] = database.service_dsn(
                        dsn, s.namespace, name, s.database_passwords
                    )
                    self.pools[name] = await self._pool(self.dsns[name], min_size=1)
            await database.check_applied(self.pools, s.namespace, s.region, self.modules)
        admin = self.nats_auth is None or nats_auth.ADMIN in self.nats_auth.credentials
        nc = await self.nats(nats_auth.ADMIN if admin else self.modules[0].name)
        js = nc.jetstream()
        if admin:
            await ensure_streams(js, s.namespace)
        if self.serve_http:
            s = self._bind_ports(s)
            s = await self._local_chain(s)
        kek = self._kek or self._load_kek()
        owned = {m.name: self.pools[m.name] for m in self.owned}
        await check_kek(owned, kek, s.namespace, s.region)
        mailer = await self.open_mailer(s)
        rt = Runtime(s, dsn, pool, nc, js, self.clock, self.ids, kek, mailer=mailer)
        self.rt = rt
        for module in self.modules:
            # Each service part reads the bus as itself; its relay publishes as another identity.
            nc = await self.nats(self.identity(module))
            self.runtimes[module.name] = dataclasses.replace(
                rt, nc=nc, js=jetstream(nc), pool=self.pools[module.name],
                dsn=self.dsns[module.name],
            )  # fmt: skip
            self.parts.append(await prepared(module, self.runtimes[module.name]))
        calls = Calls(dict(s.service_urls), EdgeSigner(keys_of(kek), self.clock))
        self.stack.push_async_callback(calls.close)
        wire(self.parts, calls)
        if self.serve_http and self.serves_core_api:
            here = {m.name for m in self.modules}
            offline = offline_runtime(s)
            self.remote_parts = [
                await m.build(offline) for m in all_modules() if m.name not in here
            ]
        if self.nats_auth is not None:
            for module, parts in zip(self.modules, self.parts, strict=True):
                nats_auth.check_durables(module.name, [p.name for p in parts.projections])

    async def _pool(self, dsn: str, *, min_size: int) -> AsyncConnectionPool:
        pool = AsyncConnectionPool(dsn, min_size=min_size, max_size=16, open=False, timeout=10)
        await pool.open(wait=True)
        self.stack.push_async_callback(pool.close)
        return pool

    def identity(self, module: ServiceModule) -> str:
        """The NATS identity `module`'s part connects as: its own service's, unless this process
        runs it without its store (the token process's keyinfo, a part of the gateway): then the
        identity of the service this process runs, whose credentials are the only ones it holds
        (messaging.auth `deployment_identities`)."""
        return module.name if module.owns_store else self.modules[0].name

    @property
    def owned(self) -> list[ServiceModule]:
        """The modules whose store this process owns: it migrates them and runs their relay."""
        return [m for m in self.modules if m.owns_store]

    @property
    def serves_core_api(self) -> bool:
        return any(m.name == "gateway" and m.owns_store for m in self.modules)

    @property
    def served_ports(self) -> list[str]:
        return list(self._sockets)

    def _served(self) -> list[str]:
        """The Settings fields of the URLs this process serves, the ops port last."""
        ports = ["api_url" if self.serves_core_api else "internal_url"]
        if any(m.name == "token" for m in self.modules):
            ports.append("idp_url")
        return [*ports, "ops_url"]

    async def _local_chain(self, s: Settings) -> Settings:
        """AUTHPI_BILLING_LOCAL_CHAIN (`make run` opt-in, unless AUTHPI_BILLING_RPC_URL names a
        node): Anvil in the data folder with the test token, and billing pointed at it. The
        resolved settings reach the IdP workers, which use that chain and start none."""
        billing = any(m.name == "billing" for m in self.modules)
        if not (billing and s.billing_local_chain and not s.billing_rpc_url):
            return s
        from authpi.billing.x402.localchain import use_local_chain  # eth-account: only here

        self.settings = await use_local_chain(s, self.stack)
        return self.settings

    async def open_mailer(self, s: Settings) -> Mailer:
        """SMTP to AUTHPI_SMTP_URL. Without it, a serving process whose Core API listens on
        loopback (`make run`, tests) starts the development sink and sends there; anywhere else
        the sink's /dev/mail would show reset and login links to the network, so no mail is sent
        (a warning says so). One-off commands (bootstrap, replay) send no mail."""
        if s.smtp_url:
            return SmtpMailer(s.smtp_url, s.mail_from)
        if not self.serve_http:
            return NoMailer()
        where = [u for u in (self.api_url, s.api_listen_url) if u]  # public and bound address
        if not all(is_loopback_host(urlsplit(u).hostname or "") for u in where):
            log.warning(
                "mail.not_configured",
                hint="set AUTHPI_SMTP_URL: no mail is sent (the development mail sink runs only "
                "when the Core API listens on a loopback address)",
            )
            return NoMailer()
        sink = MailSink(self.clock)
        await asyncio.to_thread(sink.start)
        self.stack.push_async_callback(asyncio.to_thread, sink.stop)
        self.mail_sink = sink
        self.smtp_url = sink.url
        return SmtpMailer(sink.url, s.mail_from)

    async def nats(self, identity: str) -> NATS:
        """A connection as `identity`; one shared connection when NATS has no authentication."""
        key = identity if self.nats_auth is not None else ""
        if key not in self._connections:
            nc = await connect(
                self._nats_url, f"authpi-{identity}", auth=self.nats_auth, identity=identity
            )
            self.stack.push_async_callback(nc.close)
            self._connections[key] = nc
        return self._connections[key]

    @property
    def nats_url(self) -> str:
        return self._nats_url

    def _load_kek(self) -> Kek:
        text, path = read_kek(self.settings)
        kek = Kek.from_text(text)
        self._kek_text = text
        if path is not None and path.is_relative_to(self.settings.data_dir):
            # One backup of the data folder would carry both the ciphertexts and their key,
            # and crypto-shredding would protect nothing. Development only.
            log.warning(
                "kek.in_data_dir", file=str(path),
                hint="set AUTHPI_KEK_FILE (outside the data folder) or AUTHPI_KEK in production",
            )  # fmt: skip
        log.info("kek.loaded", current=kek.current_id, versions=len(kek.ids))
        return kek

    async def _start_background(self, rt: Runtime) -> None:
        rt.sync.publications.relayed_here = True
        monitor = DeadLetterMonitor(
            rt.pool, [rt.schema(m.name) for m in self.owned], rt.clock,
            timedelta(days=self.settings.dead_letter_retention_days),
            pools={rt.schema(name): pool for name, pool in self.pools.items()},
        )  # fmt: skip
        self.dead_letters = monitor
        self._spawn("dead-letters", monitor.run)
        batches = DecodedBatches()  # one decode of each fact batch for every fact consumer here
        for module in self.owned:
            js = jetstream(await self.nats(nats_auth.relay_identity(module.name)))
            relay = Relay(
                self.dsns[module.name], rt.schema(module.name), module.name, js, rt.namespace,
                on_sequence=rt.sync.publications.published,
            )  # fmt: skip
            self.relays.append(relay)
            self._spawn(f"relay:{module.name}", relay.run)
        for module, parts in zip(self.modules, self.parts, strict=True):
            own = self.runtimes[module.name]
            for projection in parts.projections:
                consumer = ProjectionConsumer(
                    js=own.js, pool=own.pool, dsn=own.dsn,
                    projection=projection,
                    namespace=rt.namespace, on_dead_letter=monitor.record,
                )  # fmt: skip
                self.consumers.append(consumer)
                rt.sync.track(consumer)
                self._spawn(f"consumer:{projection.name}", consumer.run)
            for facts in parts.fact_projections:
                fact_consumer = FactConsumer(
                    js=own.js, pool=own.pool, dsn=own.dsn, projection=facts,
                    namespace=rt.namespace, on_dead_letter=monitor.record, batches=batches,
                )  # fmt: skip
                self.consumers.append(fact_consumer)
                self._spawn(f"consumer:{facts.name}", fact_consumer.run)
            for name, task in parts.tasks:
                self._spawn(name, self._singleton(own.dsn, rt.schema(module.name), name, task))
            for name, task in [*parts.local_tasks, *parts.worker_tasks]:
                self._spawn(name, task)
        self._spawn("sync", rt.sync.run)

    @staticmethod
    def _singleton(dsn: str, schema: str, name: str, task: Task) -> Task:
        """`task` run only while this process holds its lock: one replica runs it, the others
        stand by (eventstore.locks)."""
        key = task_lock(schema, name)
        return lambda stop: run_holding(dsn, key, task, stop)

    def _spawn(self, name: str, task: Any) -> None:
        failed = self.dead_letters.task_failed if self.dead_letters else None
        self.tasks.append(
            asyncio.create_task(supervise(name, task, self.stop_event, failed), name=name)
        )

    async def _wait_running(self, timeout: float = 30.0) -> None:
        events = [(f"relay:{r.schema}", r.started) for r in self.relays]
        events += [(f"consumer:{c.projection.name}", c.started) for c in self.consumers]
        events += [(f"warm:{p.name}", e) for p in self.parts for e in p.warm]
        assert self.rt is not None
        events.append(("sync", self.rt.sync.running))
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
        checks = await connection_checks(self.rt)
        if self.rt is None:
            return checks
        workers = [r.started for r in self.relays] + [c.started for c in self.consumers]
        # A cache follower that failed to apply an event is not warm until it has reloaded.
        workers += [e for p in self.parts for e in p.warm]
        checks["consumers"] = all(e.is_set() for e in workers) and not any(
            t.done() for t in self.tasks
        )
        return checks

    def core_app(self) -> WebApp:
        extra = self.mail_sink.routes() if self.mail_sink is not None else []
        return build_core_api_app(
            self.parts, self.ready, self.metrics, extra_routes=extra, remote=self.remote_parts
        )

    def internal_app(self) -> WebApp:
        assert self.rt is not None
        return build_internal_app(self.parts, self.ready, self.rt, self.metrics)

    def idp_app(self) -> WebApp:
        return build_idp_app(
            self.parts, self.process_ready, self.settings, self.clock, self.metrics
        )

    def ops_app(self) -> WebApp:
        return build_ops_app(self.metrics, self.ready)

    def _bind_ports(self, s: Settings) -> Settings:
        """Bind every port this process serves before the services are built, so that a port
        chosen by the system (port 0) is known to everything that renders a URL (issuer URLs,
        bootstrap.json)."""
        bound: dict[str, str] = {}
        for attr in self._served():
            url = getattr(s, attr)
            if url is None:
                raise RuntimeError(
                    "AUTHPI_INTERNAL_URL is required: where this service listens for the gateway"
                )
            # A public port behind an ingress or a port mapping binds its listen URL; the public
            # URL (issuer URLs, links in mail) stays as configured.
            listen = LISTEN_URLS.get(attr)
            listen_url = getattr(s, listen) if listen else None
            # IdP workers accept on sockets of their own in the IdP port's SO_REUSEPORT group
            # (serving.own_listener), so that connections spread evenly over the processes.
            shared = self.reuse_port or (attr == "idp_url" and s.idp_workers > 1)
            sock = bind(listen_url or url, reuse_port=shared and attr != "ops_url")
            self.stack.callback(sock.close)
            self._sockets[attr] = sock
            parts = urlsplit(url)
            if parts.port == 0 and listen_url is None:
                url = f"{parts.scheme}://{parts.hostname}:{sock.getsockname()[1]}"
            bound[attr] = url
            setattr(self, attr, url)
        self.settings = msgspec.structs.replace(s, **bound)
        return self.settings

    async def _serve(self) -> None:
        if self.dead_letters is not None:  # on the ops port's /metrics, with every port's counts
            self.metrics.registry.register(self.dead_letters)
        apps = {
            "api_url": self.core_app, "internal_url": self.internal_app, "idp_url": self.idp_app,
            "ops_url": self.ops_app,
        }  # fmt: skip
        for attr, sock in self._sockets.items():
            headers = idp_headers(self.settings) if attr == "idp_url" else []
            server = HttpServer(http_config(apps[attr](), self.settings, headers=headers))
            self.servers.append(server)
            self.tasks.append(await start_server(server, [sock], f"http:{attr}"))

    async def _start_workers(self, dsn: str) -> None:
        """IdP workers 2..N on the IdP socket, with this deployment's servers and KEK."""
        if self.settings.idp_workers <= 1 or "idp_url" not in self._sockets:
            return
        if self._kek_text is None:
            raise RuntimeError("IdP workers need the KEK from settings or the data directory")
        resolved = msgspec.structs.replace(
            self.settings, database_url=dsn, nats_url=self._nats_url, kek=self._kek_text,
            nats_credentials_file=self.nats_credentials, smtp_url=self.smtp_url,
        )  # fmt: skip
        self.workers = WorkerPool(
            resolved, [m.name for m in self.modules], self._sockets["idp_url"],
            self.settings.idp_workers - 1,
            identities={m.name: self.identity(m) for m in self.modules},
        )  # fmt: skip
        await self.workers.start()

    def _write_runtime_file(self, dsn: str, nats_url: str) -> None:
        """Where a running deployment's servers are, for `authpi bootstrap` and `authpi replay`."""
        path = self.settings.data_dir / "runtime.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        creds = str(self.nats_credentials) if self.nats_credentials else None
        write_private(
            path,
            {
                "database_url": dsn, "nats_url": nats_url, "nats_credentials_file": creds,
                "pid": os.getpid(), "ops_url": self.ops_url,
            },
        )  # fmt: skip
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
