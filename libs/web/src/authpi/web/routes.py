"""The Core API route table: which service owns each operation, read from the services' own route
declarations (each module's `core_routes`), never listed by hand. Every port that serves Core API
routes mounts them through `owned`, so a new route is owned, and forwarded by the gateway, the
moment it is declared."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from litestar import Litestar, Router

from authpi.web.opts import SERVICE

# Litestar answers OPTIONS itself on every path; HEAD follows GET.
_IMPLIED = frozenset({"OPTIONS", "HEAD"})


def owned(service: str, routes: Sequence[Any]) -> Router:
    """`routes` as one router whose every handler carries `opt[SERVICE] = service`."""
    return Router("/", route_handlers=list(routes), opt={SERVICE: service})


def owned_routes(parts: Iterable[Any]) -> list[Router]:
    """Each service part's Core API routes, owned by it (parts without routes add nothing)."""
    return [owned(p.name, p.core_routes) for p in parts if p.core_routes]


def route_table(app: Litestar) -> dict[tuple[str, str], str]:
    """(method, path template) -> owning service, for every owned route of `app`."""
    table: dict[tuple[str, str], str] = {}
    for route in app.routes:
        for method, handler in getattr(route, "route_handler_map", {}).items():
            service = handler[0].opt.get(SERVICE)
            if service is not None and method not in _IMPLIED:
                table[(method, route.path)] = service
    return table
