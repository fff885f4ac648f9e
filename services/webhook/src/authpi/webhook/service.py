"""The webhook service as a process part: webhooks on the Core API (platform.md 7) with their
inline view; the audit log (platform.md 6.1, 8) built from every domain event and the public
facts, the Events API over it and its retention; the public stream integrators read, and their
NATS credentials (event-sourced; an embedded NATS server's users are rendered from their view);
and the delivery engine (fan-out, dispatcher, the delivery log and redelivery routes)."""

from __future__ import annotations

from pathlib import Path

from litestar import Router

from authpi.web.core import provide
from authpi.web.runtime import Runtime, ServiceModule, ServiceParts, Task
from authpi.webhook.api import events
from authpi.webhook.api.webhooks import webhooks_router
from authpi.webhook.audit_retention import AuditRetention
from authpi.webhook.delivery.parts import delivery_parts
from authpi.webhook.handlers.integrators import IntegratorCredentials
from authpi.webhook.handlers.webhooks import Webhooks
from authpi.webhook.public.integrators import EmbeddedAuthorization
from authpi.webhook.public.relay import PublicStreamRelay
from authpi.webhook.reactions.audit import AuditReaction
from authpi.webhook.reactions.audit_facts import AuditFactsReaction

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


async def build(rt: Runtime) -> ServiceParts:
    webhooks = Webhooks(rt)
    schema = rt.schema("webhook")
    reader = events.EventsReader(rt.pool, schema)
    retention = AuditRetention(rt.pool, schema, rt.clock, rt.settings.events_retention_days)
    relay = PublicStreamRelay(rt.dsn, schema, rt.nc, rt.namespace)
    delivery = delivery_parts(rt, webhooks)
    integrators = IntegratorCredentials(rt, webhooks.store)
    tasks = [("webhook:audit-retention", retention.run), ("webhook:public-stream", relay.run)]
    local_tasks: list[tuple[str, Task]] = []
    warm = []
    authorization = None
    if not rt.settings.nats_url:  # the embedded server, in the data folder of this process
        authorization = EmbeddedAuthorization(rt.dsn, rt.settings, schema, integrators)
        local_tasks.append((authorization.name, authorization.run))
        warm.append(authorization.ready)
    tasks += delivery.tasks
    events_router = Router(
        "/", route_handlers=events.ROUTES, dependencies={"events_reader": provide(reader)}
    )
    return ServiceParts(
        name="webhook",
        core_routes=[webhooks_router(webhooks), events_router, *delivery.routes],
        projections=[AuditReaction(schema)],
        fact_projections=[AuditFactsReaction(schema)],
        inline_projections=webhooks.views,
        tasks=tasks,
        local_tasks=local_tasks,
        warm=warm,
        exports={"webhooks": webhooks, "events_reader": reader, "public_relay": relay,
                 "audit_retention": retention, "integrators": integrators,
                 "integrators_nats": authorization, "deliveries": delivery.deliveries},
    )  # fmt: skip


MODULE = ServiceModule(name="webhook", migrations=MIGRATIONS, build=build)
