"""The webhook service's own views. `inline_views` is its registry of inline projections: the
event store applies each committed event to the views that declare its type, and `authpi replay`
rebuilds them from the same list."""

from __future__ import annotations

from authpi.messaging.projection import Projection
from authpi.webhook.projections.integrators import IntegratorCredentialsView
from authpi.webhook.projections.webhooks import WebhooksView


def inline_views(schema: str) -> list[Projection]:
    return [WebhooksView(schema), IntegratorCredentialsView(schema)]
