"""The SQL of the delivery engine over its own tables (migration 0004), rendered once per schema:
claims, the batched outcome writes, the breaker's holds and releases, cancellation."""

from __future__ import annotations

from typing import Any, LiteralString

import msgspec

from authpi.eventstore.sqltext import render
from authpi.webhook.delivery.registry import Conn
from authpi.webhook.domain.delivery import Circuit

_CLAIMED = (
    " RETURNING d.id, d.webhook_id, d.account_id, d.event_id, d.event_type, d.occurred_at,"
    " d.attempt_count, d.scheduled_attempts, d.attempt_budget, d.next_attempt_at, d.seq,"
    # convert_to, not ::bytea: a bytea cast reads `\"` and `\u0001` in the JSON as escapes.
    " (SELECT convert_to(a.event::text, 'UTF8') FROM {schema}.audit_events AS a"
    " WHERE a.id = d.event_id)"
)


class Claimed(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    webhook_id: str
    account_id: str
    event_id: str
    event_type: str
    occurred_at: int
    attempt_count: int
    scheduled_attempts: int
    attempt_budget: int
    next_attempt_at: int | None
    seq: int
    event: bytes | None  # None: the audit row is gone (retention)


class Result(msgspec.Struct, frozen=True, kw_only=True):
    """One scheduled attempt's outcome and the delivery's state after it."""

    id: str
    attempted_at: int
    duration_ms: int
    success: bool
    response_status: int | None
    error: str | None
    response_body: str | None
    status: str
    next_attempt_at: int | None
    hold: bool


def _claimed(r: tuple[Any, ...]) -> Claimed:
    return Claimed(
        id=r[0], webhook_id=r[1], account_id=r[2], event_id=r[3], event_type=r[4],
        occurred_at=r[5], attempt_count=r[6], scheduled_attempts=r[7], attempt_budget=r[8],
        next_attempt_at=r[9], seq=r[10], event=r[11],
    )  # fmt: skip


class Store:
    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._recover: LiteralString = render(
            "UPDATE {schema}.deliveries SET claimed = false WHERE claimed", schema=schema
        )
        self._claim: LiteralString = render(
            "WITH scan AS ("
            "  SELECT id, webhook_id, next_attempt_at, seq FROM {schema}.deliveries"
            "  WHERE status = 'pending' AND NOT held AND NOT claimed"
            "    AND next_attempt_at <= %(now)s AND webhook_id <> ALL(%(skip)s::text[])"
            "  ORDER BY next_attempt_at, seq LIMIT %(scan)s),"
            " ranked AS (SELECT id, next_attempt_at, seq, row_number() OVER"
            "  (PARTITION BY webhook_id ORDER BY next_attempt_at, seq) AS rn FROM scan),"
            " picked AS (SELECT id FROM ranked WHERE rn <= %(per)s"
            "  ORDER BY next_attempt_at, seq LIMIT %(n)s)"
            " UPDATE {schema}.deliveries AS d SET claimed = true FROM picked"
            " WHERE d.id = picked.id" + _CLAIMED,
            schema=schema,
        )
        self._next_due: LiteralString = render(
            "SELECT min(next_attempt_at) FROM {schema}.deliveries"
            " WHERE status = 'pending' AND NOT held AND NOT claimed"
            "   AND webhook_id <> ALL(%(skip)s::text[])",
            schema=schema,
        )
        self._claim_probe: LiteralString = render(
            "UPDATE {schema}.deliveries AS d SET claimed = true WHERE d.id = ("
            "  SELECT id FROM {schema}.deliveries WHERE webhook_id = %s AND status = 'pending'"
            "   AND NOT claimed ORDER BY seq LIMIT 1)" + _CLAIMED,
            schema=schema,
        )
        self._write: LiteralString = render(
            "WITH r AS (SELECT * FROM unnest(%(id)b::text[], %(attempted_at)b::bigint[],"
            "   %(duration_ms)b::int[], %(success)b::bool[], %(response_status)b::int[],"
            "   %(error)b::text[], %(response_body)b::text[], %(status)b::text[],"
            "   %(next_attempt_at)b::bigint[], %(hold)b::bool[], %(manual)b::bool[])"
            "   AS r(id, attempted_at, duration_ms, success, response_status, error,"
            "   response_body, status, next_attempt_at, hold, manual)),"
            " u AS (UPDATE {schema}.deliveries AS d SET"
            "   attempt_count = d.attempt_count + 1,"
            "   scheduled_attempts = d.scheduled_attempts + CASE WHEN r.manual THEN 0 ELSE 1 END,"
            "   status = CASE WHEN r.success THEN 'succeeded'"
            "     WHEN d.status = 'pending' THEN r.status ELSE d.status END,"
            "   next_attempt_at = CASE WHEN r.success THEN NULL"
            "     WHEN d.status = 'pending' AND r.manual THEN d.next_attempt_at"
            "     WHEN d.status = 'pending' AND r.status = 'pending' THEN r.next_attempt_at"
            "     ELSE NULL END,"
            "   held = (d.held OR r.hold) AND NOT r.success,"
            "   claimed = CASE WHEN r.manual THEN d.claimed ELSE false END,"
            "   first_attempted_at = coalesce(d.first_attempted_at, r.attempted_at),"
            "   last_attempted_at = greatest(d.last_attempted_at, r.attempted_at),"
            "   last_error = r.error, last_response_status = r.response_status,"
            "   updated_at = greatest(r.attempted_at, coalesce(d.updated_at, d.created_at) + 1)"
            "  FROM r WHERE d.id = r.id RETURNING d.id, d.attempt_count)"
            " INSERT INTO {schema}.delivery_attempts (delivery_id, attempt, attempted_at,"
            "  duration_ms, success, response_status, error, response_body, manual)"
            " SELECT u.id, u.attempt_count, r.attempted_at, r.duration_ms, r.success,"
            "  r.response_status, r.error, r.response_body, r.manual FROM u JOIN r ON r.id = u.id",
            schema=schema,
        )
        self._hold: LiteralString = render(
            "UPDATE {schema}.deliveries SET held = true"
            " WHERE webhook_id = %s AND status = 'pending' AND NOT held",
            schema=schema,
        )
        self._release: LiteralString = render(
            "UPDATE {schema}.deliveries SET held = false,"
            " next_attempt_at = coalesce(next_attempt_at, %(now)s)"
            " WHERE webhook_id = %(webhook_id)s AND status = 'pending' AND held",
            schema=schema,
        )
        self._unclaim: LiteralString = render(
            "UPDATE {schema}.deliveries SET claimed = false, held = held OR %s"
            " WHERE id = ANY(%s::text[])",
            schema=schema,
        )
        self._end: LiteralString = render(
            "UPDATE {schema}.deliveries SET status = %(status)s, held = false, claimed = false,"
            " next_attempt_at = NULL, last_error = coalesce(%(error)s, last_error),"
            " updated_at = greatest(%(now)s, coalesce(updated_at, created_at) + 1)"
            " WHERE webhook_id = %(webhook_id)s AND status = 'pending'"
            "   AND (%(ids)s::text[] IS NULL OR id = ANY(%(ids)s::text[]))",
            schema=schema,
        )
        self._forget_bodies: LiteralString = render(
            "UPDATE {schema}.delivery_attempts SET response_body = NULL"
            " WHERE (delivery_id, attempt) IN (SELECT delivery_id, attempt"
            "  FROM {schema}.delivery_attempts WHERE response_body IS NOT NULL"
            "  AND attempted_at < %s LIMIT 5000)",
            schema=schema,
        )
        self._circuits: LiteralString = render(
            "SELECT webhook_id, failures, opened_at, probe_at FROM {schema}.webhook_circuits",
            schema=schema,
        )
        self._save_circuits: LiteralString = render(
            "INSERT INTO {schema}.webhook_circuits (webhook_id, failures, opened_at, probe_at)"
            " SELECT * FROM unnest(%s::text[], %s::int[], %s::bigint[], %s::bigint[])"
            " ON CONFLICT (webhook_id) DO UPDATE SET failures = EXCLUDED.failures,"
            " opened_at = EXCLUDED.opened_at, probe_at = EXCLUDED.probe_at",
            schema=schema,
        )

    async def recover(self, conn: Conn) -> int:
        """At start: the previous dispatcher's claims lapse; their attempts are made again."""
        cur = await conn.execute(self._recover)
        return max(int(cur.rowcount or 0), 0)

    async def claim(
        self, conn: Conn, now_ms: int, skip: list[str], per_webhook: int, n: int
    ) -> list[Claimed]:
        params = {"now": now_ms, "skip": skip, "scan": n * 2, "per": per_webhook, "n": n}
        cur = await conn.execute(self._claim, params)
        rows = [_claimed(r) for r in await cur.fetchall()]
        rows.sort(key=lambda c: (c.next_attempt_at or 0, c.seq))
        return rows

    async def next_due(self, conn: Conn, skip: list[str]) -> int | None:
        cur = await conn.execute(self._next_due, {"skip": skip})
        row = await cur.fetchone()
        return None if row is None else row[0]

    async def claim_probe(self, conn: Conn, webhook_id: str) -> Claimed | None:
        cur = await conn.execute(self._claim_probe, [webhook_id])
        row = await cur.fetchone()
        return None if row is None else _claimed(row)

    async def write(self, conn: Conn, results: list[Result], manual: bool = False) -> None:
        cols: dict[str, list[Any]] = {f: [] for f in Result.__struct_fields__}
        for r in results:
            for f in Result.__struct_fields__:
                cols[f].append(getattr(r, f))
        cols["manual"] = [manual] * len(results)
        await conn.execute(self._write, cols)

    async def hold(self, conn: Conn, webhook_id: str) -> None:
        await conn.execute(self._hold, [webhook_id])

    async def release(self, conn: Conn, webhook_id: str, now_ms: int) -> None:
        await conn.execute(self._release, {"webhook_id": webhook_id, "now": now_ms})

    async def unclaim(self, conn: Conn, ids: list[str], hold: bool) -> None:
        await conn.execute(self._unclaim, [hold, ids])

    async def end(
        self,
        conn: Conn,
        webhook_id: str,
        status: str,
        now_ms: int,
        error: str | None = None,
        ids: list[str] | None = None,
    ) -> int:
        """Every pending delivery of a webhook (or those of `ids`) ends as `status`."""
        params = {"status": status, "error": error, "now": now_ms, "webhook_id": webhook_id,
                  "ids": ids}  # fmt: skip
        cur = await conn.execute(self._end, params)
        return max(int(cur.rowcount or 0), 0)

    async def forget_bodies(self, conn: Conn, before_ms: int) -> int:
        """Response bodies older than `before_ms` are dropped, 5,000 at a time."""
        cur = await conn.execute(self._forget_bodies, [before_ms])
        return max(int(cur.rowcount or 0), 0)

    async def circuits(self, conn: Conn) -> dict[str, Circuit]:
        cur = await conn.execute(self._circuits)
        return {
            r[0]: Circuit(failures=r[1], opened_at=r[2], probe_at=r[3])
            for r in await cur.fetchall()
        }

    async def save_circuits(self, conn: Conn, circuits: dict[str, Circuit]) -> None:
        if not circuits:
            return
        ids = list(circuits)
        await conn.execute(
            self._save_circuits,
            [
                ids,
                [circuits[i].failures for i in ids],
                [circuits[i].opened_at for i in ids],
                [circuits[i].probe_at for i in ids],
            ],
        )
