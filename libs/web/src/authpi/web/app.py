"""The litestar app factory shared by every port: request ids, error rendering, `/healthz`,
`/readyz`, Prometheus `/metrics` and the generated `/openapi.json`."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import msgspec
from litestar import Litestar, MediaType, Request, Response, Router, get
from litestar.datastructures import MutableScopeHeaders
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from prometheus_client.registry import CollectorRegistry

from authpi.crypto.ids import ulid
from authpi.observability import bind_contextvars, clear_contextvars
from authpi.web.errors import EXCEPTION_HANDLERS, REQUEST_ID
from authpi.web.openapi import ErrorDocs, document_responses
from authpi.web.opts import ANONYMOUS
from authpi.web.text import StorableTarget

ReadyCheck = Callable[[], Awaitable[dict[str, bool]]]


class Metrics:
    def __init__(self, port_name: str) -> None:
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
        self.port_name = port_name


def request_context(app: ASGIApp, metrics: Metrics) -> ASGIApp:
    """Assign a request id (or keep a sane incoming one), echo it as X-Request-Id, bind it to
    every log line, and count the request."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        incoming = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode(
            "latin-1"
        )
        rid = incoming if 8 <= len(incoming) <= 64 and incoming.isascii() else None
        rid = rid or f"req_{ulid(time.time_ns() // 1_000_000, os.urandom(10))}"
        token = REQUEST_ID.set(rid)
        clear_contextvars()
        bind_contextvars(request_id=rid)
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableScopeHeaders.from_message(message)["X-Request-Id"] = rid
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            REQUEST_ID.reset(token)
            metrics.requests.labels(metrics.port_name, scope["method"], str(status)).inc()
            metrics.latency.labels(metrics.port_name).observe(time.perf_counter() - started)

    return middleware


class WebApp:
    """The ASGI callable served on a port: the litestar app inside the request-context layer
    (outermost, so even routing errors carry a request id)."""

    def __init__(self, app: Litestar, metrics: Metrics) -> None:
        self.litestar = app
        self._asgi = request_context(app, metrics)

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
) -> WebApp:
    metrics = Metrics(name)
    app = Litestar(
        route_handlers=[*_infrastructure_routes(metrics, ready), *route_handlers],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[StorableTarget(), *middleware],
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
    return WebApp(app, metrics)


def _infrastructure_routes(metrics: Metrics, ready: ReadyCheck) -> list[Any]:
    anonymous = {ANONYMOUS: True}

    @get("/healthz", include_in_schema=False, sync_to_thread=False, opt=anonymous)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

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

    # The machine-readable contract at the API root, the only anonymous Core API route
    # (core-api.md 1.1, 1.2).
    @get("/openapi.json", include_in_schema=False, sync_to_thread=False, opt=anonymous)
    def openapi_json(request: Request[Any, Any, Any]) -> Response[bytes]:
        schema = request.app.openapi_schema.to_schema()
        return Response(msgspec.json.encode(schema), media_type=MediaType.JSON)

    return [healthz, readyz, metrics_route, openapi_json]


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
