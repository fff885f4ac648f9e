"""Direct routes: the few hot endpoints of a port (the IdP's POST /{issuer_id}/token, /introspect
and /revoke) answered before litestar's router, as plain ASGI, because its routing, parameter
parsing and response machinery cost a token request more than its whole protocol work.

The same routes stay registered with litestar: it documents them (OpenAPI) and answers every
request this layer does not take (another method, a trailing slash, a percent-encoded slash in the
issuer id, a root path, a first segment litestar routes statically such as `/openapi/…`). A
direct route does its own error rendering, as the litestar handler of the same path does; the
port's guard (the IdP rate limit) runs first, as litestar's middleware does for the routed
requests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping

from litestar import Litestar
from litestar.types import ASGIApp, Receive, Scope, Send

# (scope, receive, send, the path's first segment): answers POST /{segment}/{name}
DirectRoute = Callable[[Scope, Receive, Send, str], Awaitable[None]]
# (scope, name): the ASGI answer that refuses the request (a 429), or None to let it through
Guard = Callable[[Scope, str], ASGIApp | None]


def direct_routes(
    app: ASGIApp,
    routes: Mapping[str, DirectRoute],
    guard: Guard | None = None,
    routed: frozenset[str] = frozenset(),
) -> ASGIApp:
    """`app` with POST /{segment}/{name} answered by `routes[name]`, unless `segment` is one of
    `routed` (a static path of litestar's, which it prefers to a parameter); `app` itself when
    there are no routes."""
    if not routes:
        return app
    table = dict(routes)

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            path: str = scope["path"]
            if path.count("/") == 2:
                _, segment, name = path.split("/")
                route = table.get(name)
                if route is not None and segment and segment not in routed:
                    refusal = guard(scope, name) if guard is not None else None
                    if refusal is not None:
                        await refusal(scope, receive, send)
                    else:
                        await route(scope, receive, send, segment)
                    return
        await app(scope, receive, send)

    return dispatch


def routed_segments(app: Litestar, names: Iterable[str]) -> frozenset[str]:
    """The first segments that litestar routes elsewhere for some `/{segment}/{name}`: the static
    first segments of its two-segment routes that end in a parameter or in one of `names` (such
    as `/openapi/{path}`). Refuses names without their `/{param}/{name}` POST route."""
    wanted = set(names)
    routed: set[str] = set()
    documented: set[str] = set()
    for route in app.routes:
        parts = route.path.strip("/").split("/")
        if len(parts) != 2 or not (parts[1] in wanted or parts[1].startswith("{")):
            continue
        if not parts[0].startswith("{"):
            routed.add(parts[0])
        elif parts[1] in wanted and "POST" in getattr(route, "methods", set[str]()):
            documented.add(parts[1])
    missing = wanted - documented
    if missing:
        raise RuntimeError(f"direct routes without a POST /{{param}}/{{name}} route: {missing}")
    return frozenset(routed)
