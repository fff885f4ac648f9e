"""The webhook service as a process part: webhooks on the Core API (platform.md 7) with their
inline view, the audit log that feeds the Events API, the public stream and deliveries, and the
delivery engine (fan-out, dispatcher, the delivery log and redelivery routes)."""

from __future__ import annotations

from pathlib import Path

from authpi.web.runtime import Runtime, ServiceModule, ServiceParts
from authpi.webhook.api.webhooks import webhooks_router
from authpi.webhook.delivery.parts import delivery_parts
from authpi.webhook.handlers.webhooks import Webhooks

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


async def build(rt: Runtime) -> ServiceParts:
    webhooks = Webhooks(rt)
    delivery = delivery_parts(rt, webhooks)
    return ServiceParts(
        name="webhook",
        core_routes=[webhooks_router(webhooks), *delivery.routes],
        inline_projections=webhooks.views,
        tasks=[*delivery.tasks],
        exports={"webhooks": webhooks, "deliveries": delivery.deliveries},
    )


MODULE = ServiceModule(name="webhook", migrations=MIGRATIONS, build=build)
