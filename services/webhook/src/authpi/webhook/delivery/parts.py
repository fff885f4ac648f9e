"""The delivery engine's share of the webhook service: the deliveries routes (every process
that serves the Core API), and the fan-out and the dispatcher (once per deployment)."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.web.runtime import Runtime, Task
from authpi.webhook.api.deliveries import deliveries_router
from authpi.webhook.delivery.dispatcher import Dispatcher
from authpi.webhook.delivery.fanout import FanOut
from authpi.webhook.delivery.manual import Deliveries
from authpi.webhook.delivery.registry import ViewRegistry
from authpi.webhook.delivery.sender import Sender, address_guard
from authpi.webhook.handlers.webhooks import Webhooks


class DeliveryParts(msgspec.Struct, kw_only=True):
    routes: list[Any]
    tasks: list[tuple[str, Task]]
    deliveries: Deliveries


def delivery_parts(rt: Runtime, webhooks: Webhooks) -> DeliveryParts:
    schema = rt.schema("webhook")
    settings = rt.settings
    registry = ViewRegistry(schema, rt.kek, webhooks)

    def sender() -> Sender:
        # Signatures carry the real time: receivers check it against their own clocks (7.5).
        return Sender(address_guard(settings), timeout_s=settings.webhooks_timeout_seconds)

    deliveries = Deliveries(rt.pool, schema, registry, sender(), rt.clock)
    fanout = FanOut(rt.dsn, schema, registry, rt.clock, rt.ids)
    dispatcher = Dispatcher(
        rt.dsn, schema, registry, sender(), rt.clock,
        delays=settings.webhooks_retry_delays,
        per_webhook=settings.webhooks_concurrency,
        total=settings.webhooks_concurrency_total,
    )  # fmt: skip
    return DeliveryParts(
        routes=[deliveries_router(deliveries)],
        tasks=[("webhook:fanout", fanout.run), ("webhook:dispatcher", dispatcher.run)],
        deliveries=deliveries,
    )
