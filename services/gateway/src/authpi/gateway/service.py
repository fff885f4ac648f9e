"""The gateway as a service module. Its schema holds the views of its reactions, each run once
per deployment: of the directory (API keys, account ids, personal tokens, inactive users and
organizations: `gateway-directory`) and of the platform issuer's public signing keys
(`gateway-platform-keys`, for console users' access tokens), plus ephemeral idempotency keys.
Every process serving the Core API or the IdP API runs the API-key and personal-token caches,
the account and organization-status followers and the platform-key follower as worker tasks,
and takes traffic only once they are warm. On the IdP port it serves `GET /{issuer_id}/keyinfo`
from the API-key cache.

In the distributed topology the IdP port belongs to the token process (no proxy hop for IdP
traffic), so `KEYINFO` is the gateway's part that the token process runs beside the token
service: keyinfo with the two caches it reads, loaded from the gateway's view and following the
stream, and nothing that runs once per deployment (reactions, sweeper, relay)."""

from __future__ import annotations

from pathlib import Path

from authpi.gateway.core import Gateway, KeyChecks
from authpi.gateway.edge.ratelimit import RateLimits
from authpi.messaging.follower import Feed
from authpi.web.runtime import Runtime, ServiceModule, ServiceParts

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


async def build(rt: Runtime) -> ServiceParts:
    gateway = Gateway(rt, limits=RateLimits().scaled(rt.settings.rate_limit_multiplier))
    return ServiceParts(
        name="gateway",
        idp_routes=gateway.keys.keyinfo(rt).routes(),
        projections=gateway.reactions,
        tasks=[("gateway-idempotency-sweeper", gateway.idempotency.run_sweeper)],
        worker_tasks=gateway.worker_tasks(),
        warm=gateway.warm(),
        exports={"gateway": gateway},
    )


async def build_keyinfo(rt: Runtime) -> ServiceParts:
    keys = KeyChecks(rt, Feed(rt.pool, rt.js, rt.namespace, rt.schema("gateway")))
    for follower in keys.followers:
        rt.sync.track(follower)  # a revoked key is refused at once (read-your-writes)
    return ServiceParts(
        name="gateway",
        idp_routes=keys.keyinfo(rt).routes(),
        worker_tasks=keys.worker_tasks(),
        warm=keys.warm(),
    )


MODULE = ServiceModule(name="gateway", migrations=MIGRATIONS, build=build)
KEYINFO = ServiceModule(
    name="gateway", migrations=MIGRATIONS, build=build_keyinfo, owns_store=False
)
