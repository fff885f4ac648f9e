"""The dead-letter table of one service schema: rows the consumers rejected as poison, read by
the operator (`authpi dead-letters`), redriven, and swept after their retention."""

from __future__ import annotations

from datetime import datetime
from typing import Any, LiteralString

import msgspec
import psycopg

from authpi.eventstore.sqltext import render


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    consumer: str
    stream_seq: int
    subject: str
    event_id: str | None
    event_type: str | None
    security: bool
    error: str
    payload: bytes
    recorded_at: datetime


class DeadLetterCount(msgspec.Struct, frozen=True, kw_only=True):
    consumer: str
    event_type: str
    security: bool
    count: int


class DeadLetters:
    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._list: LiteralString = render(
            "SELECT id, consumer, stream_seq, subject, event_id, event_type, security, error,"
            " payload, recorded_at FROM {schema}.dead_letters"
            " WHERE (%(consumer)s::text IS NULL OR consumer = %(consumer)s)"
            " AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s)) ORDER BY id",
            schema=schema,
        )
        self._delete: LiteralString = render(
            "DELETE FROM {schema}.dead_letters WHERE id = %s", schema=schema
        )
        self._fail: LiteralString = render(
            "UPDATE {schema}.dead_letters SET error = %s WHERE id = %s", schema=schema
        )
        self._counts: LiteralString = render(
            "SELECT consumer, coalesce(event_type, ''), security, count(*)"
            " FROM {schema}.dead_letters GROUP BY 1, 2, 3",
            schema=schema,
        )
        # Security events stay until an operator redrives them: sweeping one would hide, for
        # good, a revocation or deletion that some projection never applied. Everything else
        # is diagnostic only and goes once it is older than the retention.
        self._sweep: LiteralString = render(
            "DELETE FROM {schema}.dead_letters WHERE recorded_at < %s AND NOT security",
            schema=schema,
        )

    async def list(
        self,
        conn: psycopg.AsyncConnection[Any],
        consumer: str | None = None,
        ids: list[int] | None = None,
    ) -> list[DeadLetter]:
        cur = await conn.execute(self._list, {"consumer": consumer, "ids": ids})
        return [
            DeadLetter(
                id=r[0], consumer=r[1], stream_seq=r[2], subject=r[3], event_id=r[4],
                event_type=r[5], security=r[6], error=r[7], payload=bytes(r[8]),
                recorded_at=r[9],
            )
            for r in await cur.fetchall()
        ]  # fmt: skip

    async def delete(self, conn: psycopg.AsyncConnection[Any], dead_id: int) -> None:
        await conn.execute(self._delete, [dead_id])

    async def record_failure(
        self, conn: psycopg.AsyncConnection[Any], dead_id: int, error: str
    ) -> None:
        await conn.execute(self._fail, [error[:2000], dead_id])

    async def counts(self, conn: psycopg.AsyncConnection[Any]) -> list[DeadLetterCount]:
        cur = await conn.execute(self._counts)
        return [
            DeadLetterCount(consumer=r[0], event_type=r[1], security=r[2], count=r[3])
            for r in await cur.fetchall()
        ]

    async def sweep(self, conn: psycopg.AsyncConnection[Any], before: datetime) -> int:
        """Delete the non-security rows recorded before `before`; return how many."""
        cur = await conn.execute(self._sweep, [before])
        return cur.rowcount
