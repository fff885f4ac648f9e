"""What the host's processes serve HTTP with: uvicorn inside the process's own event loop on an
already bound socket, and the apps built from the service parts: the Core API behind the
gateway's layers, the IdP API behind the per-address rate limit, and (distributed topology) a
service's internal listener behind the gateway's signature. Shared by the main process, the IdP
workers and the contract generator."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import secrets
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from nats.aio.client import Client as NATS
from psycopg_pool import AsyncConnectionPool
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from authpi.config import Settings
from authpi.crypto.clock import Clock, SystemClock
from authpi.crypto.envelope import Kek
from authpi.crypto.ids import RandomIds
from authpi.gateway.edge.consistency import ReadYourWritesLayer
from authpi.gateway.edge.ratelimit import IdpRateLimit, IdpRateLimits
from authpi.web.addresses import ClientAddresses, forwarded_clients
from authpi.web.app import Metrics, WebApp, build_app
from authpi.web.calls import call_routes
from authpi.web.core import build_core_app
from authpi.web.edge import EdgeVerifier, WriteClaims, keys_of, signed_only
from authpi.web.openapi import IDP_ERRORS
from authpi.web.routes import owned_routes
from authpi.web.runtime import Runtime, ServiceParts


class HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling: the platform owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def, override]
        yield


class CoalescedWrites:
    """A connection's transport whose writes of one event-loop turn leave as one `send`.

    uvicorn writes a response's head and its body separately, two system calls (and two wake-ups
    of the peer) for every small answer such as a token response; on loopback each costs about as
    much as an ES256 signature. Writes made in the same turn are joined here and sent at the end
    of it (`call_soon`), or at once when the connection is closed, in order. Everything else goes
    to the transport itself."""

    __slots__ = (
        "_loop", "_pending", "_transport", "get_extra_info", "is_closing", "pause_reading",
        "resume_reading",
    )  # fmt: skip

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None
        # What uvicorn calls on every request, bound once (not looked up through __getattr__).
        self.get_extra_info = transport.get_extra_info
        self.is_closing = transport.is_closing
        self.pause_reading = transport.pause_reading
        self.resume_reading = transport.resume_reading

    def write(self, data: bytes) -> None:
        pending = self._pending
        if pending is None:
            self._pending = [data]
            self._loop.call_soon(self.flush)
        else:
            pending.append(data)

    def flush(self) -> None:
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        if not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over `CoalescedWrites`: one `send` per response."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalesced: Any = CoalescedWrites(transport, self.loop)
        super().connection_made(coalesced)


def http_config(
    app: Any, settings: Settings, *, headers: Sequence[tuple[str, str]] = ()
) -> uvicorn.Config:
    """uvicorn for a port served inside the process's own (uvloop) event loop: httptools, no
    access log (the request-context layer counts requests), no `server: uvicorn` header.
    uvicorn's own proxy-header handling is off (it trusts X-Forwarded-For from 127.0.0.1 by
    default): the client address comes from the configured trusted proxies only."""
    addresses = ClientAddresses(settings.trusted_proxies, settings.forwarded_header)
    return uvicorn.Config(
        forwarded_clients(app, addresses), log_config=None, access_log=False, lifespan="on",
        loop="none", http=HttpProtocol, timeout_keep_alive=30, timeout_graceful_shutdown=10,
        server_header=False, proxy_headers=False, headers=list(headers),
    )  # fmt: skip


def settle_heap() -> None:
    """After start-up: move everything built so far out of the collector's sight and collect
    the young generation less often. Request handling allocates many short-lived objects; with
    the default thresholds the collector keeps re-walking the long-lived caches and modules,
    which shows up as latency spikes."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 50)


async def start_server(
    server: HttpServer, socks: list[socket.socket], name: str
) -> asyncio.Task[None]:
    """Serve on already bound sockets; return once uvicorn accepts connections."""
    task = asyncio.create_task(server.serve(sockets=socks), name=name)
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError(f"{name} stopped while starting")
        await asyncio.sleep(0.01)
    return task


def build_idp_app(
    parts: Sequence[ServiceParts],
    ready: Any,
    settings: Settings,
    clock: Clock,
    metrics: Metrics | None = None,
) -> WebApp:
    """The IdP port: every service's IdP routes behind the per-address rate limit, the machine
    endpoints among them also as direct routes (authpi.web.direct) behind the same limit."""
    routes = [r for p in parts for r in p.idp_routes]
    direct = {name: route for p in parts for name, route in p.idp_direct.items()}
    per_minute = settings.idp_rate_limit
    limits = IdpRateLimits(token=per_minute, read=2 * per_minute, enabled=per_minute > 0)
    limiter = IdpRateLimit(limits.scaled(settings.rate_limit_multiplier), clock)
    return build_app(
        name="idp", route_handlers=routes, ready=ready, openapi_title="AuthPI IdP API",
        errors=IDP_ERRORS, middleware=[limiter.middleware], metrics=metrics, direct=direct,
        guard=limiter.refusal,
    )  # fmt: skip


def idp_headers(settings: Settings) -> list[tuple[str, str]]:
    """`X-Authpi-Worker: <pid>` on IdP responses when `worker_header` is on (tests, debugging)."""
    return [("X-Authpi-Worker", str(os.getpid()))] if settings.worker_header else []


def bind(url: str, *, reuse_port: bool = False) -> socket.socket:
    """A listening socket for `url`. `reuse_port`: SO_REUSEPORT, so that several replicas of one
    service on one machine share the port, the kernel spreading connections among them."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port if parts.port is not None else (443 if parts.scheme == "https" else 80)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and without it
    # a response written in two parts waits out the client's delayed ACK (~40 ms) under the
    # standard loop. uvloop sets it anyway; TCP_NODELAY here is inherited by accepted sockets.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def own_listener(shared: socket.socket) -> socket.socket:
    """This process's own listening socket on the address of `shared`, a SO_REUSEPORT socket
    inherited from the main process. With one socket per process the kernel spreads new
    connections over them by their addresses; on one shared socket a burst of connections (a
    client opening its pool) goes to whichever process wakes first, since uvloop accepts every
    connection waiting, and one process may be left with none."""
    sock = socket.socket(shared.family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(shared.getsockname())
    sock.listen(2048)
    return sock


def build_core_api_app(
    parts: Sequence[ServiceParts],
    ready: Any,
    metrics: Metrics | None = None,
    *,
    extra_routes: Sequence[Any] = (),
    remote: Sequence[ServiceParts] = (),
) -> WebApp:
    """The Core API: every service's Core API routes behind the gateway's layers; never served
    without them. The routes of `parts` run here; those of `remote` (the parts, built offline,
    of services that run in their own processes: the distributed topology) are forwarded to
    them. `extra_routes`: the host's own (the development mail sink's /dev/mail)."""
    routes = [*owned_routes([*parts, *remote]), *extra_routes]
    gateway = next((p.exports["gateway"] for p in parts if "gateway" in p.exports), None)
    if gateway is None:
        raise RuntimeError("the Core API is served only with the gateway module")
    forward = frozenset(p.name for p in remote if p.core_routes)
    return gateway.core_app(routes, ready, metrics, forward=forward)  # type: ignore[no-any-return]


def build_internal_app(
    parts: Sequence[ServiceParts], ready: Any, rt: Runtime, metrics: Metrics | None = None
) -> WebApp:
    """A service's internal listener (distributed topology, AUTHPI_INTERNAL_URL): its own Core
        API routes, for the gateway only. A request without the gateway's valid signature is refused
        before routing, and the signed principal is the request's (authpi.web.edge). A write answers
        once the deployment has applied it (read-your-writes): its events are recorded here, in the
        process that writes them, and the barrier is the deployment's (messaging.sync). It also
    answers the other processes' calls of its contracts (authpi.web.calls)."""
    verifier = EdgeVerifier(keys_of(rt.kek), rt.clock, frozenset(p.name for p in parts))
    exports = {name: obj for p in parts for name, obj in p.exports.items()}
    return build_core_app(
        route_handlers=[*owned_routes(parts), *call_routes(exports)], ready=ready,
        metrics=metrics,
        middleware=[ReadYourWritesLayer(rt.sync)],
        outer=lambda app: signed_only(app, verifier, WriteClaims(rt.pool, rt.namespace)),
    )  # fmt: skip


def offline_runtime(settings: Settings | None = None) -> Runtime:
    """A Runtime that is never connected: a pool that is not opened, a NATS client that never
    dials, and a KEK that wraps nothing. Enough for every service's `build` (which does no
    I/O), so that apps come from the route declarations alone: the OpenAPI documents, and the
    routes a gateway forwards to services in other processes."""
    settings = settings or Settings(data_dir=Path("/nonexistent"))
    pool = AsyncConnectionPool("", open=False)
    nc = NATS()
    return Runtime(
        settings, "", pool, nc, nc.jetstream(), SystemClock(), RandomIds(),
        Kek(secrets.token_bytes(32)),
    )  # fmt: skip


async def connection_checks(rt: Runtime | None) -> dict[str, bool]:
    """The readiness checks every serving process shares: PostgreSQL answers and NATS is
    connected. `consumers` starts False; the caller fills it in."""
    checks = {"database": False, "nats": False, "consumers": False}
    if rt is None:
        return checks
    with contextlib.suppress(Exception):
        async with rt.pool.connection(timeout=2) as conn:
            await conn.execute("SELECT 1")
        checks["database"] = True
    checks["nats"] = rt.nc.is_connected
    return checks
