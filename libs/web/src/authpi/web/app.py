"""The litestar app factory shared by every public port: request ids, error rendering, `/healthz`
(liveness) and the generated `/openapi.json` (built once, then served from memory).

Operations endpoints are not on the public ports: `build_ops_app` serves `/readyz` (readiness:
what the dependencies answer) and Prometheus `/metrics` (every port's request counts, from one
`Metrics` per process) on their own port (`AUTHPI_OPS_URL`, loopback by default)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import msgspec
from litestar import Litestar, MediaType, Request, Response, Router, get
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from prometheus_client.registry import CollectorRegistry

from authpi.crypto.ids import ulid
from authpi.observability import bind_contextvars, clear_contextvars, get_logger
from authpi.web.direct import DirectRoute, Guard, direct_routes, routed_segments
from authpi.web.errors import EXCEPTION_HANDLERS, REQUEST_ID
from authpi.web.headers import is_safe, safe_value
from authpi.web.openapi import ErrorDocs, document_responses
from authpi.web.opts import ANONYMOUS

ReadyCheck = Callable[[], Awaitable[dict[str, bool]]]
# An incoming X-Request-Id is kept only when it is plainly an id: it is echoed as a header.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")
log = get_logger("authpi.web")


class Metrics:
    """One per process: every port it serves counts into it, labelled with the port's name."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "authpi_http_requests_total",
            "HTTP requests",
            ["port", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "authpi_http_request_seconds", "HTTP latency", ["port"], registry=self.registry
        )


def request_context(app: ASGIApp, metrics: Metrics, port_name: str) -> ASGIApp:
    """Assign a request id (or keep a sane incoming one), echo it as X-Request-Id, bind it to
    every log line, and count the request. Every request of the port crosses this layer, so it
    keeps its own work small: the labelled metric children are looked up once per (method,
    status), and the response headers are rewritten in one pass."""
    observe = metrics.latency.labels(port_name).observe
    counters: dict[tuple[str, int], Any] = {}  # bounded: the server accepts known methods only

    def count(method: str, status: int) -> None:
        counter = counters.get((method, status))
        if counter is None:
            counter = counters[(method, status)] = metrics.requests.labels(
                port_name, method, str(status)
            )
        counter.inc()

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        rid = incoming if _REQUEST_ID.fullmatch(incoming) else None
        rid = rid or f"req_{ulid(time.time_ns() // 1_000_000, os.urandom(10))}"
        token = REQUEST_ID.set(rid)
        clear_contextvars()
        bind_contextvars(request_id=rid)
        started = time.perf_counter()
        status = 500
        rid_header = rid.encode("latin-1")

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = _response_headers(message.get("headers", ()), rid_header)
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            REQUEST_ID.reset(token)
            count(scope["method"], status)
            observe(time.perf_counter() - started)

    return middleware


def _response_headers(headers: Iterable[tuple[bytes, bytes]], rid: bytes) -> list[Any]:
    """The response's headers with X-Request-Id set to `rid` (any other value of it dropped),
    and no value that the server would refuse (authpi.web.headers)."""
    out: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name.lower() == b"x-request-id":
            continue
        if not is_safe(value):
            log.warning("http.header_escaped", header=bytes(name).decode("latin-1"))
            value = safe_value(value)
        out.append((name, value))
    out.append((b"x-request-id", rid))
    return out


class WebApp:
    """The ASGI callable served on a port: the litestar app, behind the port's direct routes
    (authpi.web.direct) when it has any, inside the request-context layer (outermost, so even
    routing errors carry a request id)."""

    def __init__(
        self,
        app: Litestar,
        metrics: Metrics,
        name: str,
        ready: ReadyCheck,
        *,
        direct: Mapping[str, DirectRoute] | None = None,
        guard: Guard | None = None,
        outer: Callable[[ASGIApp], ASGIApp] | None = None,
    ) -> None:
        self.litestar = app
        self.metrics = metrics
        self.ready = ready  # served by the ops port (`build_ops_app`), not by this one
        routed = routed_segments(app, direct) if direct else frozenset[str]()
        inner = direct_routes(app, direct or {}, guard, routed)
        self._asgi = request_context(outer(inner) if outer else inner, metrics, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._asgi(scope, receive, send)


def build_app(
    *,
    name: str,
    route_handlers: Sequence[Any],
    ready: ReadyCheck,
    openapi_title: str,
    errors: ErrorDocs,
    middleware: Sequence[Any] = (),
    on_startup: Sequence[Callable[[], Any]] = (),
    on_shutdown: Sequence[Callable[[], Any]] = (),
    request_max_body_size: int = 1_048_576,
    dto: Any = None,
    dependencies: Mapping[str, Provide] | None = None,
    metrics: Metrics | None = None,
    direct: Mapping[str, DirectRoute] | None = None,
    guard: Guard | None = None,
    outer: Callable[[ASGIApp], ASGIApp] | None = None,
) -> WebApp:
    """A port's app. `direct` routes are answered before litestar's router, behind `guard`
    (authpi.web.direct); their litestar routes among `route_handlers` document them. `outer`
    wraps everything but the request context (which stays outermost)."""
    metrics = metrics or Metrics()
    app = Litestar(
        route_handlers=[*_public_routes(), *route_handlers],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=list(middleware),
        openapi_config=_openapi_config(openapi_title),
        on_startup=list(on_startup),
        on_shutdown=list(on_shutdown),
        request_max_body_size=request_max_body_size,
        dto=dto,
        return_dto=None,
        dependencies=dict(dependencies or {}),
        debug=False,
        logging_config=None,
    )
    # Built once here (litestar caches it), so /openapi.json and proto/ show the same errors.
    document_responses(app.openapi_schema, errors)
    return WebApp(app, metrics, name, ready, direct=direct, guard=guard, outer=outer)


def _healthz() -> Any:
    @get("/healthz", include_in_schema=False, sync_to_thread=False, opt={ANONYMOUS: True})
    def healthz() -> dict[str, str]:
        """Liveness: the process answers. Public on every port (load balancers, probes)."""
        return {"status": "ok"}

    return healthz


def _public_routes() -> list[Any]:
    # The machine-readable contract at the API root, the only anonymous Core API route
    # (core-api.md 1.1, 1.2). Generated once, on first use: the routes never change.
    document: list[bytes] = []

    @get("/openapi.json", include_in_schema=False, sync_to_thread=False, opt={ANONYMOUS: True})
    def openapi_json(request: Request[Any, Any, Any]) -> Response[bytes]:
        if not document:
            document.append(msgspec.json.encode(request.app.openapi_schema.to_schema()))
        return Response(document[0], media_type=MediaType.JSON)

    return [_healthz(), openapi_json]


def build_ops_app(metrics: Metrics, ready: ReadyCheck) -> WebApp:
    """The operations port: `/healthz`, `/readyz` and `/metrics`, no schema, no credentials
    (reachable only where `AUTHPI_OPS_URL` binds: the loopback interface by default)."""
    app = Litestar(
        route_handlers=_ops_routes(metrics, ready),
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=None,
        debug=False,
        logging_config=None,
    )
    return WebApp(app, metrics, "ops", ready)


def _ops_routes(metrics: Metrics, ready: ReadyCheck) -> list[Any]:
    anonymous = {ANONYMOUS: True}

    @get("/readyz", include_in_schema=False, opt=anonymous)
    async def readyz() -> Response[dict[str, Any]]:
        checks = await ready()
        ok = all(checks.values())
        return Response(
            {"status": "ready" if ok else "not_ready", "checks": checks},
            status_code=200 if ok else 503,
        )

    @get("/metrics", include_in_schema=False, sync_to_thread=False, opt=anonymous)
    def metrics_route() -> Response[bytes]:
        return Response(
            generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST.split(";")[0]
        )

    return [_healthz(), readyz, metrics_route]


def _openapi_config(title: str) -> OpenAPIConfig:
    """litestar's own schema routes stay under /openapi (JSON only, no HTML renderers)."""
    router = Router(
        "/openapi", route_handlers=[], include_in_schema=False, opt={ANONYMOUS: True}, dto=None
    )
    return OpenAPIConfig(
        title=title,
        version="1.0.0",
        path="/openapi",
        create_examples=False,
        render_plugins=[JsonRenderPlugin()],
        openapi_router=router,
    )


JSON = MediaType.JSON
