"""The router of issuers, their auth methods and clients, with the handlers as dependencies."""

from __future__ import annotations

from litestar import Router

from authpi.directory.api import auth_methods, clients, issuers
from authpi.directory.handlers.clients import Clients
from authpi.directory.handlers.issuers import Issuers
from authpi.web.core import provide


def issuers_router(issuer_handlers: Issuers, client_handlers: Clients) -> Router:
    return Router(
        "/",
        route_handlers=[*issuers.ROUTES, *auth_methods.ROUTES, *clients.ROUTES],
        dependencies={"issuers": provide(issuer_handlers), "clients": provide(client_handlers)},
    )
