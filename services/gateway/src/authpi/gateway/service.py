"""The gateway as a service module: its schema holds only ephemeral data (idempotency keys);
its key cache is loaded before the Core API port opens."""

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
    await gateway.start()
    return ServiceParts(
        name="gateway",
        tasks=[
            ("gateway-api-keys", gateway.follow),
            ("gateway-idempotency-sweeper", gateway.idempotency.run_sweeper),
        ],
        exports={"gateway": gateway},
    )


MODULE = ServiceModule(name="gateway", migrations=MIGRATIONS, build=build)
