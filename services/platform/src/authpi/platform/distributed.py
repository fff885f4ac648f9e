"""`authpi up --distributed` (`make run-distributed`): the distributed topology on this machine,
without containers. A three-node NATS JetStream cluster on loopback, one PostgreSQL (embedded
unless AUTHPI_DATABASE_URL names one) with a role per service, `authpi migrate` and
`authpi streams --replicas 3` run once, then every service as its own OS process with its own
database role and NATS credentials: two gateway replicas on the Core API port and two token
replicas on the IdP port (each port shared, SO_REUSEPORT), as `make run` serves them.
A process that dies is started again (the time until it is up is logged and printed); SIGINT or
SIGTERM stops everything. Which processes run is `plan()`'s."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field, replace

from psycopg.conninfo import make_conninfo

from authpi.config import Settings, read_kek
from authpi.crypto.clock import SystemClock
from authpi.embedded.servers import EmbeddedPostgres, NatsCluster, die_with_parent, free_port
from authpi.messaging import auth as nats_auth
from authpi.observability import get_logger
from authpi.platform import database
from authpi.platform.files import write_private
from authpi.platform.mailsink import MailSink

log = get_logger("authpi.distributed")

NATS_NODES = 3
UP_LINE = "AuthPI is up"  # what `authpi serve` prints once it serves (cli.up)
START_TIMEOUT_S = 300.0
SERVICES = ("directory", "token", "agent", "billing", "webhook")


@dataclass(frozen=True)
class ProcessSpec:
    """One OS process of the topology: `authpi <args>` with `env` on top of the common one."""

    name: str
    service: str  # whose database role and NATS credentials it runs with
    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict[str, str])


def plan(api_url: str, idp_url: str, internal: dict[str, str]) -> list[ProcessSpec]:
    """The processes: two gateway replicas on the Core API port, forwarding to each service's
    internal listener (`internal`: service -> URL); two token replicas sharing the IdP port and
    the token service's internal listener; one process for each other service. Every process
    knows both public URLs (issuer URLs, links in mail) and binds only its own ports."""
    # Every process knows where each service listens: the gateway forwards there, the token
    # service's portal reaches the directory's contracts there (platform.modules `wire`).
    urls = ",".join(f"{name}={url}" for name, url in internal.items())
    common = {"AUTHPI_API_URL": api_url, "AUTHPI_IDP_URL": idp_url, "AUTHPI_SERVICE_URLS": urls}
    specs = [ProcessSpec(f"gateway-{i}", "gateway", ("serve", "gateway"), common) for i in (1, 2)]
    for service in SERVICES:
        env = {**common, "AUTHPI_INTERNAL_URL": internal[service]}
        replicas = [f"{service}-1", f"{service}-2"] if service == "token" else [service]
        specs += [ProcessSpec(name, service, ("serve", service), env) for name in replicas]
    return specs


@dataclass
class Child:
    spec: ProcessSpec
    proc: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    restarts: list[float] = field(default_factory=list[float])  # seconds until up again, each
    exited_at: float = 0.0  # time.monotonic() of its last unasked exit
    retired: bool = False  # stopped on purpose (`remove_replica`): not started again

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None


class Distributed:
    def __init__(
        self, settings: Settings, *, nats_nodes: int = NATS_NODES, env: dict[str, str] | None = None
    ) -> None:
        """`env`: more AUTHPI_* settings for every process (tests raise the rate limits)."""
        self.settings = settings
        self.extra_env = env or {}
        self.dir = settings.data_dir / "distributed"
        self.nats_nodes = nats_nodes
        self.stack = contextlib.ExitStack()
        self.children: dict[str, Child] = {}
        self.nats: NatsCluster | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.owner_dsn = ""
        self.env: dict[str, str] = {}
        self.stopping = False
        self._watchers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        s = self.settings
        creds_dir = self.dir / "nats-auth"
        nats_auth.write_deployment(creds_dir, s.namespace)
        self.nats = NatsCluster(self.dir / "nats", config=creds_dir / "nats-auth.conf",
                                size=self.nats_nodes)  # fmt: skip
        nats_url = await asyncio.to_thread(self.nats.start)
        self.owner_dsn = s.database_url or ""
        if not self.owner_dsn:
            self.postgres = EmbeddedPostgres(s.data_dir / "postgres")
            self.owner_dsn = await asyncio.to_thread(self.postgres.start)
        sink = MailSink(SystemClock())
        if not s.smtp_url:
            await asyncio.to_thread(sink.start)
            self.stack.callback(sink.stop)
        kek, kek_path = read_kek(s)
        self.env = {
            **os.environ,
            "AUTHPI_NATS_URL": nats_url,
            "AUTHPI_NAMESPACE": s.namespace,
            "AUTHPI_DATA_DIR": str(s.data_dir),
            "AUTHPI_SMTP_URL": s.smtp_url or sink.url,
            "AUTHPI_OPS_URL": "http://127.0.0.1:0",
            "AUTHPI_IDP_WORKERS": "1",
            **({"AUTHPI_KEK_FILE": str(kek_path)} if kek_path else {"AUTHPI_KEK": kek}),
            **{f"AUTHPI_DB_PASSWORD_{k.upper()}": v for k, v in self._passwords().items()},
            **self.extra_env,
        }
        self.env.pop("AUTHPI_KEK" if kek_path else "AUTHPI_KEK_FILE", None)
        owner = {"AUTHPI_DATABASE_URL": self.owner_dsn,
                 "AUTHPI_NATS_CREDENTIALS_FILE": str(creds_dir / "credentials.json")}  # fmt: skip
        await self._once("migrate", ("migrate",), owner)
        await self._once("streams", ("streams", "--replicas", str(self.nats_nodes)), owner)
        if not s.bootstrap_path.exists():
            await self._once("bootstrap", ("bootstrap",), owner)
        internal = {name: f"http://127.0.0.1:{free_port()}" for name in SERVICES}
        for spec in plan(s.api_url, s.idp_url, internal):
            child = Child(spec)
            self.children[spec.name] = child
            await self._spawn(child)
        try:
            await asyncio.wait_for(
                asyncio.gather(*(c.ready.wait() for c in self.children.values())), START_TIMEOUT_S
            )
        except TimeoutError:
            raise TimeoutError(self._not_up()) from None
        self._write_state(nats_url)
        log.info("distributed.started", processes=len(self.children), nats=nats_url)

    def _not_up(self) -> str:
        """Which processes never came up, and the last lines each wrote."""
        waiting = [c.spec.name for c in self.children.values() if not c.ready.is_set()]
        tails = []
        for name in waiting:
            path = self.dir / "logs" / f"{name}.log"
            lines = path.read_text(errors="replace").splitlines()[-15:] if path.exists() else []
            tails.append(f"--- {name} ---\n" + "\n".join(lines))
        return f"not up after {START_TIMEOUT_S:.0f}s: {waiting}\n" + "\n".join(tails)

    def _passwords(self) -> dict[str, str]:
        """Each role's password: AUTHPI_DB_PASSWORD_<SERVICE>, else one generated once into the
        data folder (an embedded PostgreSQL trusts local connections; a server that checks
        passwords gets these from `authpi migrate`)."""
        path = self.dir / "db-passwords.json"
        kept: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        names = [*SERVICES, "gateway"]
        passwords = {n: kept.get(n) or secrets.token_urlsafe(24) for n in names}
        passwords.update(self.settings.database_passwords)
        if passwords != kept:
            write_private(path, passwords)
        return passwords

    def role_dsn(self, service: str, process: str) -> str:
        return make_conninfo(
            self.owner_dsn, user=database.service_role(self.settings.namespace, service),
            password=self._passwords()[service], application_name=f"authpi-{process}",
        )  # fmt: skip

    def _child_env(self, spec: ProcessSpec) -> dict[str, str]:
        creds = self.dir / "nats-auth" / f"credentials-{spec.service}.json"
        return {
            **self.env,
            "AUTHPI_DATABASE_URL": self.role_dsn(spec.service, spec.name),
            "AUTHPI_NATS_CREDENTIALS_FILE": str(creds),
            **spec.env,
        }

    async def _once(self, name: str, args: tuple[str, ...], env: dict[str, str]) -> None:
        proc = await asyncio.create_subprocess_exec(
            *_authpi(), *args, env={**self.env, **env}, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"authpi {name} failed ({proc.returncode}): {out.decode()[-2000:]}")
        log.info("distributed.step_done", step=name)

    async def _spawn(self, child: Child) -> None:
        logs = self.dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        child.ready.clear()
        child.started_at = time.monotonic()
        with open(logs / f"{child.spec.name}.log", "ab") as log_file:
            child.proc = await asyncio.create_subprocess_exec(
                *_authpi(), *child.spec.args, env=self._child_env(child.spec),
                stdout=asyncio.subprocess.PIPE, stderr=log_file, preexec_fn=die_with_parent,
            )  # fmt: skip
        self._watchers.append(asyncio.create_task(self._watch(child, child.proc)))

    async def _watch(self, child: Child, proc: asyncio.subprocess.Process) -> None:
        """Read the child's output until it is up; when it exits unasked, start it again."""
        assert proc.stdout is not None
        async for line in proc.stdout:
            if UP_LINE in line.decode(errors="replace"):
                child.ready.set()
        code = await proc.wait()
        if self.stopping or child.retired:
            return
        died = child.exited_at = time.monotonic()
        log.warning("process.exited", process=child.spec.name, pid=proc.pid, code=code)
        await self._spawn(child)
        await child.ready.wait()
        took = time.monotonic() - died
        child.restarts.append(took)
        log.info("process.restarted", process=child.spec.name, pid=child.pid, seconds=took)
        print(f"restarted {child.spec.name} (pid {child.pid}) in {took:.1f}s", flush=True)

    def pid(self, name: str) -> int | None:
        return self.children[name].pid

    def replicas(self, service: str) -> list[str]:
        """The names of `service`'s running processes."""
        return [n for n, c in self.children.items() if c.spec.service == service]

    async def add_replica(self, service: str) -> Child:
        """One more replica of `service` (`authpi serve <service>`, as a Deployment scaled up):
        the same settings and ports as the others, its own process name; once it serves."""
        names = self.replicas(service)
        first = self.children[names[0]]
        n = len(names) + 1
        while f"{service}-{n}" in self.children:
            n += 1
        child = Child(replace(first.spec, name=f"{service}-{n}"))
        self.children[child.spec.name] = child
        await self._spawn(child)
        await asyncio.wait_for(child.ready.wait(), START_TIMEOUT_S)
        return child

    async def remove_replica(self, name: str) -> None:
        """Stop a replica (SIGTERM, as a Deployment scaled down) and forget it."""
        child = self.children.pop(name)
        child.retired = True
        if child.proc is not None and child.proc.returncode is None:
            child.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(child.proc.wait(), 20)
            except TimeoutError:
                child.proc.kill()
                await child.proc.wait()

    async def restart_postgres(self) -> None:
        """Stop the embedded PostgreSQL and start it again on the same data (a fault test)."""
        assert self.postgres is not None, "only the embedded PostgreSQL is restarted here"
        await asyncio.to_thread(self.postgres.restart)

    def _write_state(self, nats_url: str) -> None:
        """Where everything runs (pids, URLs), for operators and tests."""
        state = {
            "api_url": self.settings.api_url, "idp_url": self.settings.idp_url,
            "nats_url": nats_url, "processes": {n: c.pid for n, c in self.children.items()},
        }  # fmt: skip
        write_private(self.dir / "state.json", state)

    async def stop(self) -> None:
        self.stopping = True
        procs = [c.proc for c in self.children.values() if c.proc and c.proc.returncode is None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        for task in self._watchers:
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        if self.nats is not None:
            await asyncio.to_thread(self.nats.stop)
        if self.postgres is not None:
            await asyncio.to_thread(self.postgres.stop)
        self.stack.close()
        log.info("distributed.stopped")


def _authpi() -> tuple[str, ...]:
    return (sys.executable, "-m", "authpi.platform.cli")
