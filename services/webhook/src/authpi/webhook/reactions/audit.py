"""webhook-audit: the audit log (platform.md 6.1, 8), one `audit_events` row per public event,
from every domain event (internal types make no row; reactions.audit_facts adds the public facts).
Rows are keyed by the public event id, so a redelivered
message inserts nothing (ON CONFLICT DO NOTHING), and a replay rebuilds nothing twice: the log is
append-only, so `reset` leaves it alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import psycopg

from authpi.contracts.public import PublicEvent
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent
from authpi.webhook.domain.public_events import from_stored

_COLUMNS = (
    "id, account_id, type, occurred_at, issuer_id, user_id, client_id, agent_id, org_id, event"
)
_INSERT_ONE = (
    "INSERT INTO {schema}.audit_events (" + _COLUMNS + ")"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::json) ON CONFLICT (id) DO NOTHING"
)
# The column arrays go in binary (%b): psycopg's text form of an array quotes every element
# through a regular expression in Python, which cost a token's audit row about ten times the
# binary form (the JSON column is full of quotes to escape).
INSERT_MANY = (
    "INSERT INTO {schema}.audit_events (" + _COLUMNS + ")"
    " SELECT d.id, d.account_id, d.type, d.occurred_at, d.issuer_id, d.user_id, d.client_id,"
    "  d.agent_id, d.org_id, d.event::json"
    " FROM unnest(%b::text[], %b::text[], %b::text[], %b::bigint[], %b::text[], %b::text[],"
    "  %b::text[], %b::text[], %b::text[], %b::text[])"
    "  AS d(id, account_id, type, occurred_at, issuer_id, user_id, client_id, agent_id, org_id,"
    "  event)"
    " ORDER BY d.occurred_at, d.id ON CONFLICT (id) DO NOTHING"
)
# INSERT_MANY in the rows' own order (a consumer batch's events, in stream order), numbered as
# one INSERT each would have numbered them.
_INSERT_IN_ORDER = (
    "INSERT INTO {schema}.audit_events (" + _COLUMNS + ")"
    " SELECT d.id, d.account_id, d.type, d.occurred_at, d.issuer_id, d.user_id, d.client_id,"
    "  d.agent_id, d.org_id, d.event::json"
    " FROM unnest(%b::text[], %b::text[], %b::text[], %b::bigint[], %b::text[], %b::text[],"
    "  %b::text[], %b::text[], %b::text[], %b::text[]) WITH ORDINALITY"
    "  AS d(id, account_id, type, occurred_at, issuer_id, user_id, client_id, agent_id, org_id,"
    "  event, n)"
    " ORDER BY d.n ON CONFLICT (id) DO NOTHING"
)
_encoder = msgspec.json.Encoder()


def row_of(event: PublicEvent) -> tuple[Any, ...]:
    """The audit_events columns of one public event (migration 0001)."""
    s = event.subject
    return (
        event.id, s["account_id"], event.type, int(event.timestamp), s.get("issuer_id"),
        s.get("user_id"), s.get("client_id"), s.get("agent_id"), s.get("org_id"),
        _encoder.encode(event).decode(),
    )  # fmt: skip


def _public(stored: StoredEvent) -> PublicEvent | None:
    payload = msgspec.to_builtins(stored.event)
    return from_stored(stored.type, stored.event_id, payload, stored.meta, stored.recorded_at)


class AuditReaction:
    name = "webhook-audit"
    event_types: tuple[str, ...] = ()  # every domain event; internal types produce no row

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._insert = render(_INSERT_ONE, schema=schema)
        self._insert_many = render(_INSERT_IN_ORDER, schema=schema)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        public = _public(stored)
        if public is not None:
            await conn.execute(self._insert, row_of(public))

    async def apply_batch(
        self, conn: psycopg.AsyncConnection[Any], batch: Sequence[StoredEvent]
    ) -> None:
        """A consumer batch's rows in one statement (messaging.consumer)."""
        rows = [row_of(e) for e in map(_public, batch) if e is not None]
        if len(rows) == 1:
            await conn.execute(self._insert, rows[0])
        elif rows:
            await conn.execute(self._insert_many, [list(c) for c in zip(*rows, strict=True)])

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """The audit log is append-only: a replay re-inserts nothing it already holds."""
