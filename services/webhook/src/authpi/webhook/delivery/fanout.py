"""The fan-out (platform.md 7.3, 7.10): each audit-log row becomes one delivery per webhook of the
same account that is `active` or `failing` when it is read and whose event and subject filters
match it, in event order. Records are created in the transaction that moves the tailer's cursor,
and UNIQUE (webhook_id, event_id) makes a repeated row create nothing. A failing webhook's new
deliveries are created held: the breaker's probes release them (7.7)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, LiteralString

import msgspec

from authpi.crypto.clock import Clock
from authpi.crypto.ids import Ids
from authpi.eventstore.sqltext import render
from authpi.webhook.delivery.registry import Conn, Registry, Target
from authpi.webhook.domain.delivery import DELIVERABLE, matches
from authpi.webhook.tailer import AuditRow, Tailer

NAME = "webhook-fanout"


class _Subject(msgspec.Struct):
    subject: dict[str, Any] = {}


_subject = msgspec.json.Decoder(_Subject)


class FanOut(Tailer):
    name = NAME

    def __init__(
        self, dsn: str, schema: str, registry: Registry, clock: Clock, ids: Ids, **kw: Any
    ) -> None:
        super().__init__(dsn, schema, **kw)
        self.registry = registry
        self.clock = clock
        self.ids = ids
        self.created = 0  # deliveries this process created (observability, tests)
        self._sql_insert: LiteralString = render(
            "INSERT INTO {schema}.deliveries (id, webhook_id, account_id, event_id, event_type,"
            "  audit_seq, occurred_at, status, attempt_budget, next_attempt_at, held, created_at)"
            " SELECT r.id, r.webhook_id, r.account_id, r.event_id, r.event_type, r.audit_seq,"
            "  r.occurred_at, 'pending', r.budget, %(now)s, r.held, %(now)s"
            " FROM unnest(%(id)b::text[], %(webhook_id)b::text[], %(account_id)b::text[],"
            "  %(event_id)b::text[], %(event_type)b::text[], %(audit_seq)b::bigint[],"
            "  %(occurred_at)b::bigint[], %(budget)b::int[], %(held)b::bool[]) WITH ORDINALITY"
            "  AS r(id, webhook_id, account_id, event_id, event_type, audit_seq, occurred_at,"
            "  budget, held, ord)"
            " ORDER BY r.ord"
            " ON CONFLICT (webhook_id, event_id) DO NOTHING",
            schema=schema,
        )

    async def wanted(self, conn: Conn) -> bool:
        """No webhook to feed, no row to read: every token issued is an audit row, and a
        deployment without webhooks would otherwise read each one back for nothing."""
        return any(t.status in DELIVERABLE for t in await self.registry.targets(conn))

    async def handle(self, conn: Conn, rows: list[AuditRow]) -> None:
        by_account: dict[str, list[Target]] = defaultdict(list)
        for t in await self.registry.targets(conn):
            if t.status in DELIVERABLE:
                by_account[t.account_id].append(t)
        if not by_account:
            return
        cols: dict[str, list[Any]] = defaultdict(list)
        for row in rows:
            targets = by_account.get(row.account_id)
            if not targets:
                continue
            subject = _subject.decode(row.event).subject if _any_subjects(targets) else {}
            for t in targets:
                if not matches(row.type, subject, t.events, t.subjects):
                    continue
                cols["id"].append(self.ids.new("dlv"))
                cols["webhook_id"].append(t.id)
                cols["account_id"].append(row.account_id)
                cols["event_id"].append(row.id)
                cols["event_type"].append(row.type)
                cols["audit_seq"].append(row.seq)
                cols["occurred_at"].append(row.occurred_at)
                cols["budget"].append(t.max_attempts)
                cols["held"].append(t.status == "failing")
        if not cols:
            return
        cur = await conn.execute(self._sql_insert, {"now": self.clock.now_ms(), **cols})
        self.created += max(int(cur.rowcount or 0), 0)


def _any_subjects(targets: list[Target]) -> bool:
    return any(t.subjects for t in targets)
