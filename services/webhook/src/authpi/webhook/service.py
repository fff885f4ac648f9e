"""The webhook service as a process part: webhooks on the Core API (platform.md 7) with their
inline view, and the audit log that feeds the Events API, the public stream and deliveries."""

from __future__ import annotations

from pathlib import Path

from authpi.web.runtime import Runtime, ServiceModule, ServiceParts
from authpi.webhook.api.webhooks import webhooks_router
from authpi.webhook.handlers.webhooks import Webhooks

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


async def build(rt: Runtime) -> ServiceParts:
    webhooks = Webhooks(rt)
    return ServiceParts(
        name="webhook",
        core_routes=[webhooks_router(webhooks)],
        inline_projections=webhooks.views,
        exports={"webhooks": webhooks},
    )


MODULE = ServiceModule(name="webhook", migrations=MIGRATIONS, build=build)
