"""What every service is built from (one Runtime per process) and what it contributes to the
process (its ServiceParts): routes per port, projections, background tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from psycopg_pool import AsyncConnectionPool

from authpi.config import Settings
from authpi.crypto.clock import Clock
from authpi.crypto.envelope import Kek
from authpi.crypto.ids import Ids
from authpi.messaging.facts import FactProjection
from authpi.messaging.projection import Projection
from authpi.messaging.sync import Sync
from authpi.web.direct import DirectRoute
from authpi.web.mail import Mailer, NoMailer

Task = Callable[[asyncio.Event], Awaitable[None]]


@dataclass
class Runtime:
    settings: Settings
    dsn: str
    pool: AsyncConnectionPool
    nc: NATS
    js: JetStreamContext
    clock: Clock
    ids: Ids
    kek: Kek
    # Read-your-writes: what this process applies, and the write barrier (messaging.sync). One
    # per process: the runtimes of its service parts (`dataclasses.replace`, or built with
    # `shared_sync`) share the first one's.
    shared_sync: Sync | None = None
    # Outgoing mail (authpi.web.mail), built by the host without I/O: SMTP to AUTHPI_SMTP_URL or
    # the development sink. Processes that never send mail keep the refusing default.
    mailer: Mailer = field(default_factory=NoMailer)

    def __post_init__(self) -> None:
        if self.shared_sync is None:
            self.shared_sync = Sync(self.nc, self.settings.namespace)

    @property
    def sync(self) -> Sync:
        assert self.shared_sync is not None
        return self.shared_sync

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    def schema(self, service: str) -> str:
        return f"{self.settings.namespace}_{service}"


@dataclass
class ServiceParts:
    name: str
    core_routes: list[Any] = field(default_factory=list[Any])
    idp_routes: list[Any] = field(default_factory=list[Any])
    # IdP endpoints answered before the router (authpi.web.direct), by the last segment of
    # POST /{issuer_id}/{name}; each is also among `idp_routes`, which document it.
    idp_direct: dict[str, DirectRoute] = field(default_factory=dict[str, DirectRoute])
    # Fed by JetStream consumers (one per projection and deployment).
    projections: list[Projection] = field(default_factory=list[Projection])
    # Fed by the FACTS stream in batches (one consumer per fact projection and deployment).
    fact_projections: list[FactProjection] = field(default_factory=list[FactProjection])
    # Applied in the write transaction; listed here so `authpi replay` can rebuild them.
    inline_projections: list[Projection] = field(default_factory=list[Projection])
    # Singletons: one active copy per deployment, however many replicas of the service run. The
    # supervising process of each replica runs each under its session advisory lock
    # (eventstore.locks.task_lock); the other replicas stand by and take over when the holder
    # dies.
    tasks: list[tuple[str, Task]] = field(default_factory=list[tuple[str, Task]])
    # Run by every replica's supervising process (not the IdP workers): what serves that process
    # only (the key maker's child process, the embedded NATS server's users).
    local_tasks: list[tuple[str, Task]] = field(default_factory=list[tuple[str, Task]])
    # Run in every process that serves HTTP (each IdP worker too): in-memory caches that load a
    # projection, then follow the stream with their own ordered consumer (DESIGN.md 5).
    worker_tasks: list[tuple[str, Task]] = field(default_factory=list[tuple[str, Task]])
    # Set by the worker tasks once their cache is warm; a worker takes traffic only after all.
    warm: list[asyncio.Event] = field(default_factory=list[asyncio.Event])
    # Shared objects other parts of the same process may use (e.g. the API-key cache).
    exports: dict[str, Any] = field(default_factory=dict[str, Any])
    # One-off I/O the parts need before any task runs or any port serves (a row, a bucket), run
    # by every process right after `build`. `build` itself does no I/O: the contracts (OpenAPI)
    # are built from the parts of an unconnected Runtime.
    prepare: list[Callable[[], Awaitable[object]]] = field(
        default_factory=list[Callable[[], Awaitable[object]]]
    )


@dataclass(frozen=True)
class ServiceModule:
    name: str
    migrations: Path
    build: Callable[[Runtime], Awaitable[ServiceParts]]
    # False for a part of a service run beside another in its process (the gateway's keyinfo in
    # the token process): the process neither migrates that service's schema nor runs its relay.
    owns_store: bool = True
