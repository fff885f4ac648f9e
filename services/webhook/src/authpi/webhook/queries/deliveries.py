"""The delivery log as the Core API reads it (platform.md 7.8, contract 5.12): one webhook's
deliveries newest first, filtered by event type, status and creation time; one delivery."""

from __future__ import annotations

from typing import Any, LiteralString

import msgspec
from psycopg.rows import class_row

from authpi.eventstore.sqltext import render
from authpi.webhook.delivery.registry import Conn


class DeliveryRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    webhook_id: str
    account_id: str
    event_id: str
    event_type: str
    occurred_at: int
    status: str
    attempt_count: int
    attempt_budget: int
    first_attempted_at: int | None
    last_attempted_at: int | None
    next_attempt_at: int | None
    last_error: str | None
    last_response_status: int | None
    created_at: int
    updated_at: int | None


class AttemptRow(msgspec.Struct, frozen=True, kw_only=True):
    delivery_id: str
    attempt: int
    attempted_at: int
    duration_ms: int
    success: bool
    response_status: int | None
    error: str | None
    response_body: str | None
    manual: bool


class DeliveryFilters(msgspec.Struct, frozen=True, kw_only=True):
    event_type: str | None = None
    status: str | None = None
    after: int | None = None  # created_at > after
    before: int | None = None  # created_at < before


_COLUMNS: LiteralString = (
    "id, webhook_id, account_id, event_id, event_type, occurred_at, status, attempt_count,"
    " attempt_budget, first_attempted_at, last_attempted_at, next_attempt_at, last_error,"
    " last_response_status, created_at, updated_at"
)


class DeliveryQueries:
    def __init__(self, schema: str) -> None:
        self._list: LiteralString = render(
            "SELECT " + _COLUMNS + " FROM {schema}.deliveries"
            " WHERE webhook_id = %(webhook_id)s AND account_id = %(account_id)s"
            "   AND (%(event_type)s::text IS NULL OR event_type = %(event_type)s)"
            "   AND (%(status)s::text IS NULL OR status = %(status)s)"
            "   AND (%(after)s::bigint IS NULL OR created_at > %(after)s)"
            "   AND (%(before)s::bigint IS NULL OR created_at < %(before)s)"
            "   AND (%(c_at)s::bigint IS NULL OR (created_at, id) < (%(c_at)s, %(c_id)s::text))"
            " ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
            schema=schema,
        )
        self._one: LiteralString = render(
            "SELECT " + _COLUMNS + " FROM {schema}.deliveries"
            " WHERE id = %s AND webhook_id = %s AND account_id = %s",
            schema=schema,
        )
        self._attempts: LiteralString = render(
            "SELECT delivery_id, attempt, attempted_at, duration_ms, success, response_status,"
            " error, response_body, manual FROM {schema}.delivery_attempts"
            " WHERE delivery_id = %s ORDER BY attempt",
            schema=schema,
        )
        self._event: LiteralString = render(
            "SELECT convert_to(event::text, 'UTF8') FROM {schema}.audit_events WHERE id = %s",
            schema=schema,
        )

    async def deliveries(
        self,
        conn: Conn,
        account_id: str,
        webhook_id: str,
        filters: DeliveryFilters,
        after_key: tuple[int, str] | None,
        limit: int,
    ) -> list[DeliveryRow]:
        params: dict[str, Any] = {
            "account_id": account_id,
            "webhook_id": webhook_id,
            "limit": limit,
            "c_at": after_key[0] if after_key else None,
            "c_id": after_key[1] if after_key else None,
            **msgspec.structs.asdict(filters),
        }
        async with conn.cursor(row_factory=class_row(DeliveryRow)) as cur:
            await cur.execute(self._list, params)
            return await cur.fetchall()

    async def delivery(
        self, conn: Conn, account_id: str, webhook_id: str, delivery_id: str
    ) -> DeliveryRow | None:
        async with conn.cursor(row_factory=class_row(DeliveryRow)) as cur:
            await cur.execute(self._one, [delivery_id, webhook_id, account_id])
            return await cur.fetchone()

    async def attempts(self, conn: Conn, delivery_id: str) -> list[AttemptRow]:
        async with conn.cursor(row_factory=class_row(AttemptRow)) as cur:
            await cur.execute(self._attempts, [delivery_id])
            return await cur.fetchall()

    async def event(self, conn: Conn, event_id: str) -> bytes | None:
        cur = await conn.execute(self._event, [event_id])
        row = await cur.fetchone()
        return None if row is None else bytes(row[0])
