"""The litestar app factory shared by every public port: request ids, error rendering, `/healthz`
(liveness) and the generated `/openapi.json` (built on first use, then served from memory).

Operations endpoints are not on the public ports: `build_ops_app` serves `/readyz` (readiness:
what the dependencies answer) and Prometheus `/metrics` (every port's request counts, from one
`Metrics` per process) on their own port (`AUTHPI_OPS_URL`, loopback by default)."""

from __future__ import annotations

import re
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import msgspec
from litestar import Litestar, MediaType, Request, Response, Router, get
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import OpenAPI
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from authpi.crypto.ids import MonotonicUlids
from authpi.observability import REQUEST_ID, get_logger
from authpi.web.direct import DirectRoute, Guard, direct_routes, routed_segments
from authpi.web.errors import EXCEPTION_HANDLERS
from authpi.web.headers import is_safe, safe_value
from authpi.web.openapi import ErrorDocs, document_responses
from authpi.web.opts import ANONYMOUS

ReadyCheck = Callable[[], Awaitable[dict[str, bool]]]
# An incoming X-Request-Id is kept only when it is plainly an id: it is echoed as a header.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")
log = get_logger("authpi.web")


# Latency buckets (seconds) of authpi_http_request_seconds: prometheus_client's defaults.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


class Metrics:
    """One per process: every port it serves counts into it, labelled with the port's name.

    Counted in plain dicts and lists, read only when /metrics is scraped (`_HttpCollector`):
    every request of every port passes here, and prometheus_client's own Counter and Histogram
    take a lock and walk their buckets in Python on each call."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # (port, method, status) -> requests
        self.requests: dict[tuple[str, str, int], int] = {}
        # port -> [count per bucket (the last one +Inf)..., sum of seconds]
        self.latency: dict[str, list[float]] = {}
        self.registry.register(_HttpCollector(self))

    def port(self, name: str) -> tuple[Callable[[str, int], None], Callable[[float], None]]:
        """The two counting functions of port `name`: (method, status) and seconds."""
        requests = self.requests
        latency = self.latency.setdefault(name, [0.0] * (len(LATENCY_BUCKETS) + 2))
        sum_at = len(LATENCY_BUCKETS) + 1

        def count(method: str, status: int) -> None:
            key = (name, method, status)
            requests[key] = requests.get(key, 0) + 1

        def observe(seconds: float) -> None:
            latency[bisect_left(LATENCY_BUCKETS, seconds)] += 1
            latency[sum_at] += seconds

        return count, observe


class _HttpCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            "authpi_http_requests", "HTTP requests", labels=["port", "method", "status"]
        )
        for (port, method, status), n in sorted(self.metrics.requests.items()):
            requests.add_metric([port, method, str(status)], n)
        yield requests
        latency = HistogramMetricFamily(
            "authpi_http_request_seconds", "HTTP latency", labels=["port"]
        )
        for port, counts in sorted(self.metrics.latency.items()):
            cumulative, buckets = 0.0, list[tuple[str, float]]()
            for bound, n in zip((*LATENCY_BUCKETS, "+Inf"), counts, strict=False):
                cumulative += n
                buckets.append((str(bound), cumulative))
            latency.add_metric([port], buckets, counts[-1])
        yield latency


_next_request_id = MonotonicUlids().new


def request_context(app: ASGIApp, metrics: Metrics, port_name: str) -> ASGIApp:
    """Outermost layer of every port: give the request an id (kept from a well-formed
    `X-Request-Id`, else `req_` + a ULID), answer it in `X-Request-Id`, let every log line of
    the request carry it (authpi.observability.REQUEST_ID), and count the request. Every request
    of the port crosses this layer, so it keeps its own work small: the counters are plain
    dicts, the id costs a few string slices, and the response headers are rewritten in one
    pass."""
    count, observe = metrics.port(port_name)
    perf_counter = time.perf_counter

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        rid: str | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming: str = value.decode("latin-1")
                if _REQUEST_ID.fullmatch(incoming):
                    rid = incoming
                break
        if rid is None:
            rid = "req_" + _next_request_id()
        token = REQUEST_ID.set(rid)
        started = perf_counter()
        status = 500
        rid_header = bytes(rid, "latin-1")

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
            observe(perf_counter() - started)

    return middleware


def _response_headers(headers: Iterable[tuple[bytes, bytes]], rid: bytes) -> list[Any]:
    """The response's headers with X-Request-Id set to `rid` (any other value of it dropped),
    and no value that the server would refuse (authpi.web.headers). The usual response, whose
    values are all plain, is checked with one search over all of them."""
    out = [(n, v) for n, v in headers if n.lower() != b"x-request-id"]
    if not is_safe(b" ".join([v for _, v in out])):
        for i, (name, value) in enumerate(out):
            if not is_safe(value):
                log.warning("http.header_escaped", header=bytes(name).decode("latin-1"))
                out[i] = (name, safe_value(value))
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
        state=State({_ERRORS: errors}),
    )
    # Built on first use, not here: a process that never serves it (an IdP worker, a test's
    # platform) never pays for it. Each way to it documents the errors, so /openapi.json and
    # proto/ show the same ones.
    app.plugins.get(OpenAPIPlugin).__class__ = _DocumentedOpenAPI
    return WebApp(app, metrics, name, ready, direct=direct, guard=guard, outer=outer)


def _healthz() -> Any:
    @get("/healthz", include_in_schema=False, sync_to_thread=False, opt={ANONYMOUS: True})
    def healthz() -> dict[str, str]:
        """Liveness: the process answers. Public on every port (load balancers, probes)."""
        return {"status": "ok"}

    return healthz


_ERRORS = "authpi.openapi.errors"  # app state: the port's ErrorDocs


class _DocumentedOpenAPI(OpenAPIPlugin):
    """litestar's OpenAPI plugin, whose document (built once, on first use) carries the port's
    error responses (authpi.web.openapi)."""

    __slots__ = ()

    def _build_openapi(self) -> OpenAPI:
        document = super()._build_openapi()
        document_responses(document, self.app.state[_ERRORS])
        return document


def _public_routes() -> list[Any]:
    # The machine-readable contract at the API root, the only anonymous Core API route
    # (core-api.md 1.1, 1.2). Generated once, on first use: the routes never change.
    document: list[bytes] = []

    @get("/openapi.json", include_in_schema=False, sync_to_thread=False, opt={ANONYMOUS: True})
    def openapi_json(request: Request[Any, Any, Any]) -> Response[bytes]:
        if not document:
            # litestar's own cached rendering, which its /openapi/openapi.json serves too.
            schema = request.app.plugins.get(OpenAPIPlugin).provide_openapi_schema()
            document.append(msgspec.json.encode(schema))
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
