"""The gateway as a service module. Its schema holds its projection of the directory (API keys,
account ids: `gateway-directory`, run once per deployment) and ephemeral idempotency keys. Every
process serving the Core API runs the key cache and the account follower as worker tasks, and
takes traffic only once they are warm."""

from __future__ import annotations

from pathlib import Path

from authpi.directory.handlers.tokens import PersonalTokenBearer
from authpi.gateway.core import Gateway
from authpi.gateway.ratelimit import RateLimits
from authpi.web.runtime import Runtime, ServiceModule, ServiceParts

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


async def build(rt: Runtime) -> ServiceParts:
    gateway = Gateway(
        rt,
        limits=RateLimits().scaled(rt.settings.rate_limit_multiplier),
        bearer=PersonalTokenBearer(rt),  # `ptk_` personal tokens (core-api.md 1.2, 3.5)
    )
    return ServiceParts(
        name="gateway",
        projections=[gateway.projection],
        tasks=[("gateway-idempotency-sweeper", gateway.idempotency.run_sweeper)],
        worker_tasks=gateway.worker_tasks(),
        warm=gateway.warm(),
        exports={"gateway": gateway},
    )


MODULE = ServiceModule(name="gateway", migrations=MIGRATIONS, build=build)
