"""The gateway as a service module. Its schema holds the views of its reactions, each run once
per deployment: of the directory (API keys, account ids, personal tokens, inactive users and
organizations: `gateway-directory`) and of the platform issuer's public signing keys
(`gateway-platform-keys`, for console users' access tokens), plus ephemeral idempotency keys.
Every process serving the Core API or the IdP API runs the API-key and personal-token caches,
the account and organization-status followers and the platform-key follower as worker tasks,
and takes traffic only once they are warm. On the IdP port it serves `GET /{issuer_id}/keyinfo`
from the API-key cache."""

from __future__ import annotations

from pathlib import Path

from authpi.gateway.api.keyinfo import KeyInfo
from authpi.gateway.core import Gateway
from authpi.gateway.edge.ratelimit import RateLimits
from authpi.web.runtime import Runtime, ServiceModule, ServiceParts

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


async def build(rt: Runtime) -> ServiceParts:
    gateway = Gateway(rt, limits=RateLimits().scaled(rt.settings.rate_limit_multiplier))
    keyinfo = KeyInfo(
        gateway.api_keys, rt.clock, rt.settings.idp_url, gateway.organizations,
        verified=gateway.key_verified if gateway.metering else None,
    )  # fmt: skip
    return ServiceParts(
        name="gateway",
        idp_routes=keyinfo.routes(),
        projections=gateway.reactions,
        tasks=[("gateway-idempotency-sweeper", gateway.idempotency.run_sweeper)],
        worker_tasks=gateway.worker_tasks(),
        warm=gateway.warm(),
        exports={"gateway": gateway},
    )


MODULE = ServiceModule(name="gateway", migrations=MIGRATIONS, build=build)
