"""webhook-audit: the audit log (platform.md 6.1, 8), one `audit_events` row per public event,
from every domain event of a public type (its consumer takes only those; internal types make no
row; reactions.audit_facts adds the public facts).
Rows are keyed by the public event id, so a redelivered
message inserts nothing (ON CONFLICT DO NOTHING), and a replay rebuilds nothing twice: the log is
append-only, so `reset` leaves it alone."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
import psycopg

from authpi.contracts.public import PublicEvent
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent
from authpi.webhook.domain.public_events import RULES, from_stored

_COLUMNS = (
    "id, account_id, type, occurred_at, issuer_id, user_id, client_id, agent_id, org_id, event"
)
# The rows go as one JSON array, an object per row with the columns and the public event itself,
# encoded for the whole batch by one msgspec call and read back by json_to_recordset; a json
# column keeps the event's text as encoded. (Column arrays cost Python a dump per element:
# about a third of a token's audit row.) PostgreSQL's JSON functions refuse a \u0000 in any
# string, as jsonb does; no public event holds one: the event stores are jsonb, request bodies
# with a NUL are refused (authpi.web.text) and so are control characters in the token endpoint's
# parameters, the only source of a fact's text.
_ROWS = (
    " FROM ROWS FROM (json_to_recordset(%s::json) AS (id text, account_id text, type text,"
    "  occurred_at bigint, issuer_id text, user_id text, client_id text, agent_id text,"
    "  org_id text, event json)) WITH ORDINALITY AS d(" + _COLUMNS + ", n)"
)
_SELECT = (
    "INSERT INTO {schema}.audit_events (" + _COLUMNS + ") SELECT d.id, d.account_id, d.type,"
    " d.occurred_at, d.issuer_id, d.user_id, d.client_id, d.agent_id, d.org_id, d.event"
)
INSERT_MANY = _SELECT + _ROWS + " ORDER BY d.occurred_at, d.id ON CONFLICT (id) DO NOTHING"
# INSERT_MANY in the rows' own order (a consumer batch's events, in stream order), numbered as
# one INSERT each would have numbered them.
INSERT_IN_ORDER = _SELECT + _ROWS + " ORDER BY d.n ON CONFLICT (id) DO NOTHING"


class AuditColumns(msgspec.Struct, frozen=True):
    """The columns of an audit_events row (migration 0001) that come from its public event."""

    id: str  # evt_…
    account_id: str
    type: str
    occurred_at: int
    issuer_id: str | None
    user_id: str | None
    client_id: str | None
    agent_id: str | None
    org_id: str | None


class _Row(AuditColumns, frozen=True):
    """A row to insert: the columns and the event itself (encoded in place)."""

    event: PublicEvent


_encoder = msgspec.json.Encoder()


def rows_json(events: Iterable[PublicEvent]) -> str:
    """The parameter of INSERT_MANY / INSERT_IN_ORDER for these events."""
    rows: list[_Row] = []
    for event in events:
        s = event.subject
        rows.append(
            _Row(
                event.id, s["account_id"], event.type, int(event.timestamp), s.get("issuer_id"),
                s.get("user_id"), s.get("client_id"), s.get("agent_id"), s.get("org_id"), event,
            )
        )  # fmt: skip
    return _encoder.encode(rows).decode()


def _public(stored: StoredEvent) -> PublicEvent | None:
    payload = msgspec.to_builtins(stored.event)
    return from_stored(stored.type, stored.event_id, payload, stored.meta, stored.recorded_at)


class AuditReaction:
    name = "webhook-audit"
    # The public types only (the catalogue's rules): an internal event makes no row, so its
    # consumer is not handed one (a refresh's only event, refresh-token.rotated, is internal).
    event_types: tuple[str, ...] = tuple(sorted(RULES))

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._insert = render(INSERT_IN_ORDER, schema=schema)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        public = _public(stored)
        if public is not None:
            await conn.execute(self._insert, [rows_json([public])])

    async def apply_batch(
        self, conn: psycopg.AsyncConnection[Any], batch: Sequence[StoredEvent]
    ) -> None:
        """A consumer batch's rows in one statement (messaging.consumer)."""
        events = [e for e in map(_public, batch) if e is not None]
        if events:
            await conn.execute(self._insert, [rows_json(events)])

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """The audit log is append-only: a replay re-inserts nothing it already holds."""
