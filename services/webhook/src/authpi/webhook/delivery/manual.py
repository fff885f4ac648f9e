"""What an operator does to deliveries through the Core API (platform.md 7.9): one immediate
attempt of one delivery (reusing its delivery and event ids, freshly signed, counted in
`attempt_count` but not against the budget), and the bulk requeue of failed deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, LiteralString

import msgspec
from psycopg_pool import AsyncConnectionPool

from authpi.crypto.clock import Clock
from authpi.errors import Conflict, NotFound
from authpi.eventstore.sqltext import render
from authpi.web.etag import check_if_match, etag_of
from authpi.webhook.delivery.registry import Conn, Registry, Target
from authpi.webhook.delivery.sender import Attempt, Sender
from authpi.webhook.delivery.store import Result, Store
from authpi.webhook.queries.deliveries import DeliveryQueries, DeliveryRow


def etag(row: DeliveryRow) -> str:
    return etag_of(row.created_at, row.updated_at)


class Deliveries:
    def __init__(
        self, pool: AsyncConnectionPool, schema: str, registry: Registry, sender: Sender,
        clock: Clock,
    ) -> None:  # fmt: skip
        self.pool = pool
        self.schema = schema
        self.registry = registry
        self.sender = sender
        self.clock = clock
        self.queries = DeliveryQueries(schema)
        self.store = Store(schema)
        self._requeue: LiteralString = render(
            "WITH q AS (UPDATE {schema}.deliveries SET status = 'pending', scheduled_attempts = 0,"
            "  next_attempt_at = %(now)s, held = %(held)s, claimed = false,"
            "  updated_at = greatest(%(now)s, coalesce(updated_at, created_at) + 1)"
            " WHERE webhook_id = %(webhook_id)s AND account_id = %(account_id)s"
            "  AND status = 'failed' AND created_at >= %(after)s AND created_at < %(before)s"
            "  AND (%(types)s::text[] IS NULL OR event_type = ANY(%(types)s::text[]))"
            " RETURNING 1)"
            " SELECT (SELECT count(*) FROM q), pg_notify(%(channel)s, '')",
            schema=schema,
        )

    async def webhook(self, conn: Conn, account_id: str, webhook_id: str) -> Target:
        target = await self.registry.target(conn, webhook_id)
        if target is None or target.account_id != account_id or target.status == "deleted":
            raise NotFound("no such webhook", reason="webhook.not_found")
        return target

    async def redeliver(
        self, account_id: str, webhook_id: str, delivery_id: str, if_match: str | None
    ) -> tuple[DeliveryRow, bool]:
        async with self.pool.connection() as conn:
            target = await self.webhook(conn, account_id, webhook_id)
            row = await self.queries.delivery(conn, account_id, webhook_id, delivery_id)
            if row is None:
                raise NotFound("no such delivery", reason="delivery.not_found")
            check_if_match(if_match, etag(row))
            if target.status == "disabled":
                raise Conflict("the webhook is disabled; enable it before redelivering",
                               reason="delivery.webhook_disabled")  # fmt: skip
            event = await self.queries.event(conn, row.event_id)
            if event is None:
                raise Conflict("the event is no longer kept", reason="delivery.event_expired")
            creds = await self.registry.credentials(conn, webhook_id, self.clock.now_ms())
        attempt = Attempt(
            delivery_id=row.id, event_id=row.event_id, event_type=row.event_type,
            occurred_at=row.occurred_at, event=event, attempt=row.attempt_count + 1,
        )  # fmt: skip
        outcome = await self.sender.send(target, creds, attempt)
        now = self.clock.now_ms()
        result = Result(
            id=row.id, attempted_at=now - outcome.duration_ms, duration_ms=outcome.duration_ms,
            success=outcome.success, response_status=outcome.response_status, error=outcome.error,
            response_body=outcome.response_body, status=row.status, next_attempt_at=None,
            hold=False,
        )  # fmt: skip
        async with self.pool.connection() as conn:
            async with conn.transaction():
                await self.store.write(conn, [result], manual=True)
            updated = await self.queries.delivery(conn, account_id, webhook_id, delivery_id)
        assert updated is not None
        return updated, outcome.success

    async def requeue(
        self, account_id: str, webhook_id: str, after: int, before: int,
        event_types: Sequence[str] | None,
    ) -> int:  # fmt: skip
        async with self.pool.connection() as conn:
            target = await self.webhook(conn, account_id, webhook_id)
            if target.status == "disabled":
                raise Conflict("the webhook is disabled; enable it before redelivering",
                               reason="delivery.webhook_disabled")  # fmt: skip
            params: dict[str, Any] = {
                "now": self.clock.now_ms(), "held": target.status == "failing",
                "webhook_id": webhook_id, "account_id": account_id, "after": after,
                "before": before, "types": list(event_types) if event_types else None,
                "channel": f"{self.schema}_deliveries",
            }  # fmt: skip
            async with conn.transaction():
                cur = await conn.execute(self._requeue, params)
                row = await cur.fetchone()
        return 0 if row is None else int(row[0])


def as_dict(row: DeliveryRow) -> dict[str, Any]:
    return msgspec.structs.asdict(row)
