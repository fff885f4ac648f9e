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
from authpi.messaging.facts import FactConsumer
from authpi.web.runtime import Runtime, ServiceModule, ServiceParts

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


async def build(rt: Runtime) -> ServiceParts:
    agents = Agents(rt)
    schema = rt.schema("agent")
    usage = FactConsumer(
        js=rt.js, pool=rt.pool, dsn=rt.dsn, projection=UsageReaction(schema), namespace=rt.namespace
    )
    return ServiceParts(
        name="agent",
        core_routes=[agents_router(agents)],
        projections=[IssuersReaction(schema), MembershipsReaction(schema)],
        inline_projections=agents.views,
        tasks=[
            ("agent:issuer-cascade", agents.cascade_task),
            ("agent:verifier-usage", usage.run),
        ],
        exports={"agents": agents, "agent_usage": usage},
    )


MODULE = ServiceModule(name="agent", migrations=MIGRATIONS, build=build)
