"""The router of agents and their verifiers, with the handlers as a dependency."""

from __future__ import annotations

from litestar import Router

from authpi.agent.api import agents, verifiers
from authpi.agent.handlers.agents import Agents
from authpi.web.core import provide


def agents_router(handlers: Agents) -> Router:
    return Router(
        "/",
        route_handlers=[*agents.ROUTES, *verifiers.ROUTES],
        dependencies={"agents": provide(handlers)},
    )
