"""billing-lifecycle: identity lifecycle operations (platform.md 5.5: signups, invitations,
membership changes) counted into usage hours as `identity_lifecycle`, from the directory's
events. Free in the documented rate card, priced when an operator sets a rate. Each event is
counted in the consumer's transaction with its checkpoint, so exactly once; the hour is the
event's recorded time."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.billing.domain.rates import hour_of
from authpi.billing.reactions.metering import ADD_USAGE, add_counts
from authpi.crypto.clock import Clock
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent

DIMENSION = "identity_lifecycle"


class LifecycleReaction:
    name = "billing-lifecycle"
    # Invitations join this list when the directory records them.
    event_types = (
        "user.created",
        "organization.membership.created",
        "organization.membership.updated",
        "organization.membership.deleted",
    )

    def __init__(self, schema: str, clock: Clock) -> None:
        self.schema = schema
        self.clock = clock
        self._add = render(ADD_USAGE, schema=schema)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        key = (stored.meta.account_id, DIMENSION, hour_of(stored.recorded_at))
        await add_counts(conn, self._add, {key: 1}, hour_of(self.clock.now_ms()))

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Usage already counted is not a projection of the events: nothing to drop."""
