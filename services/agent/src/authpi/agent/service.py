"""The agent service as a process part: agents and their verifiers on the Core API (platform.md
3, 4), the issuers and agent memberships it learns from the directory's events, the cascade that
deletes the agents of a deleted issuer, and verifier usage counted from token facts."""

from __future__ import annotations

from pathlib import Path

from authpi.agent.api.routes import agents_router
from authpi.agent.handlers.agents import Agents
from authpi.agent.reactions.issuers import IssuersReaction
from authpi.agent.reactions.memberships import MembershipsReaction
from authpi.agent.reactions.usage import UsageReaction
from authpi.web.runtime import Runtime, ServiceModule, ServiceParts

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


async def build(rt: Runtime) -> ServiceParts:
    agents = Agents(rt)
    schema = rt.schema("agent")
    return ServiceParts(
        name="agent",
        core_routes=[agents_router(agents)],
        projections=[IssuersReaction(schema), MembershipsReaction(schema)],
        inline_projections=agents.views,
        fact_projections=[UsageReaction(schema)],
        tasks=[("agent:issuer-cascade", agents.cascade_task)],
        exports={"agents": agents},
    )


MODULE = ServiceModule(name="agent", migrations=MIGRATIONS, build=build)
