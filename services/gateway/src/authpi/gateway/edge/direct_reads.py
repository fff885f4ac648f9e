"""The hottest Core API reads (`GET /v1/me`, get user, list users: the routes that declare a
`DirectRead`, authpi.web.reads) answered before litestar's router, as plain ASGI: for a request
that spends a few microseconds on its own work, litestar's routing, its middleware stack (one
wrapper per gateway layer), dependency injection and response machinery were most of the cost.

A direct read crosses the same checks as the routed request, in the same order, with the same
code: the storable-path check (authpi.web.text), the rate limit (`RateLimitLayer`'s bucket and
class), authentication with the `{account_id}` path check (`AuthenticationLayer.resolve`), the
payment gate and idempotency keys (neither applies to a GET) and read-your-writes (a read waits
for nothing: writes wait until the deployment applied them), then the route's scope guards; its
errors are rendered in the spec's format (authpi.web.errors.send_error), with the request id set
by the request context that wraps it.

Taken only when litestar would route the request to that same handler: `GET`, no root path, no
query string, a path of the route's shape whose segments are all non-empty (no trailing slash),
and no other route of the app (any method) that could claim the same path. Everything else goes
to litestar: HEAD, pagination or filters in the query string, routes forwarded to another
process (the distributed topology), routes with guards other than scope guards."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.serialization import encode_json
from litestar.types import ASGIApp, Receive, Scope, Send

from authpi.errors import AuthpiError
from authpi.gateway.edge.layers import AuthenticationLayer, client_ip
from authpi.gateway.edge.ratelimit import TokenBuckets
from authpi.web.errors import send_error, unexpected
from authpi.web.guards import ScopeGuard
from authpi.web.opts import ANONYMOUS, DIRECT_READ, RATE_CLASS, READ, SERVICE
from authpi.web.reads import DirectRead
from authpi.web.text import check_path_params

_JSON = (b"content-type", b"application/json")


class _Route:
    """One direct read: its path template (None for a parameter segment, else the literal), the
    parameters' names, and what it runs."""

    __slots__ = ("deps", "guards", "names", "rate_class", "read", "segments", "shadows")

    def __init__(
        self,
        segments: list[str | None],
        names: list[str],
        read: DirectRead,
        deps: tuple[Any, ...],
        guards: list[ScopeGuard],
        rate_class: Any,
    ) -> None:
        self.segments = segments
        self.names = names
        self.read = read
        self.deps = deps
        self.guards = guards
        self.rate_class = rate_class
        # Other routes' templates that a path of this shape may also match: litestar decides.
        self.shadows: list[list[str | None]] = []

    def match(self, parts: list[str]) -> dict[str, str] | None:
        values: list[str] = []
        for want, got in zip(self.segments, parts, strict=True):
            if want is None:
                values.append(got)
            elif want != got:
                return None
        if any(_matches(shadow, parts) for shadow in self.shadows):
            return None
        return dict(zip(self.names, values, strict=True))


def _matches(template: list[str | None], parts: list[str]) -> bool:
    return all(want is None or want == got for want, got in zip(template, parts, strict=True))


def _template(path: str) -> tuple[list[str | None], list[str]] | None:
    """A litestar path as segments (None for a `{name:str}` parameter) and parameter names;
    None when a parameter is of another type (litestar converts or spans segments)."""
    segments: list[str | None] = []
    names: list[str] = []
    for part in path.strip("/").split("/"):
        if part.startswith("{"):
            name, _, kind = part.strip("{}").partition(":")
            if kind != "str":
                return None
            segments.append(None)
            names.append(name)
        else:
            segments.append(part)
    return segments, names


def _compatible(a: list[str | None], b: list[str | None]) -> bool:
    if len(a) != len(b):
        return False
    return all(x is None or y is None or x == y for x, y in zip(a, b, strict=True))


class DirectReads:
    """Builds the direct-read dispatcher in front of a Core API litestar app."""

    def __init__(
        self, buckets: TokenBuckets, authentication: AuthenticationLayer, forward: frozenset[str]
    ) -> None:
        self.buckets = buckets
        self.authentication = authentication
        self.forward = forward

    def routes(self, app: Litestar) -> list[_Route]:
        direct: list[_Route] = []
        others: list[tuple[list[str | None], bool]] = []  # (template, spans segments)
        for route in app.routes:
            parsed = _template(route.path)
            handlers = getattr(route, "route_handler_map", {})
            get = handlers.get("GET")
            handler = get[0] if get else None
            read = handler.opt.get(DIRECT_READ) if handler is not None else None
            made = self._route(handler, read, parsed) if read is not None else None
            if made is not None:
                direct.append(made)
            if parsed is None:
                others.append((_prefix(route.path), True))
            elif made is None:
                others.append((parsed[0], False))
        kept: list[_Route] = []
        for each in direct:
            spanned = False
            for template, spans in others:
                n = len(template)
                if spans and n <= len(each.segments) and _compatible(template, each.segments[:n]):
                    spanned = True  # a route spanning segments may claim it: litestar decides
                elif not spans and _compatible(template, each.segments):
                    each.shadows.append(template)
            if not spanned:
                kept.append(each)
        return kept

    def _route(
        self, handler: Any, read: DirectRead, parsed: tuple[list[str | None], list[str]] | None
    ) -> _Route | None:
        if parsed is None:
            raise RuntimeError(f"a direct read needs plain string parameters: {handler}")
        if handler.opt.get(ANONYMOUS) or handler.opt.get(SERVICE) in self.forward:
            return None
        guards = list(handler.resolve_guards())
        if not all(isinstance(g, ScopeGuard) for g in guards):
            raise RuntimeError(f"a direct read's guards must be scope guards: {handler}")
        provided = handler.resolve_dependencies()
        deps = tuple(provided[name].dependency() for name in read.needs)
        rate_class = handler.opt.get(RATE_CLASS, READ)
        return _Route(parsed[0], parsed[1], read, deps, guards, rate_class)

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """`app` (the Core API's litestar app) with its direct reads answered in front of it."""
        if not isinstance(app, Litestar):
            raise TypeError("direct reads sit right in front of the litestar app")
        by_length: dict[int, list[_Route]] = {}
        for route in self.routes(app):
            by_length.setdefault(len(route.segments), []).append(route)
        if not by_length:
            return app
        answer = self._answer

        async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
            if (
                scope["type"] == "http"
                and scope["method"] == "GET"
                and not scope["query_string"]
                and not scope.get("root_path")
            ):
                empty, *parts = scope["path"].split("/")
                candidates = by_length.get(len(parts))
                if candidates and not empty and all(parts):
                    for route in candidates:
                        params = route.match(parts)
                        if params is not None:
                            await answer(route, params, scope, send)
                            return
            await app(scope, receive, send)

        return dispatch

    async def _answer(
        self, route: _Route, params: dict[str, str], scope: Scope, send: Send
    ) -> None:
        try:
            scope["path_params"] = params
            check_path_params(params)
            self.buckets.take(client_ip(scope) or "-", route.rate_class)
            principal = await self.authentication.resolve(scope)
            for guard in route.guards:
                guard.check(principal)
            answer = await route.read(principal, params, *route.deps)
            body = encode_json(answer.content)
        except AuthpiError as exc:
            await send_error(send, exc)
            return
        except Exception as exc:  # litestar's last exception handler does the same
            await send_error(send, unexpected(exc))
            return
        headers = [_JSON, (b"content-length", b"%d" % len(body))]
        if answer.etag is not None:
            headers.append((b"etag", answer.etag.encode("latin-1")))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _prefix(path: str) -> list[str | None]:
    """The segments of a path before its first parameter that spans segments (or converts)."""
    out: list[str | None] = []
    for part in path.strip("/").split("/"):
        if part.startswith("{"):
            if part.strip("{}").partition(":")[2] != "str":
                break
            out.append(None)
        else:
            out.append(part)
    return out
