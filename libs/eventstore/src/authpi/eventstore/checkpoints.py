"""Projection checkpoints and dead letters, always written in the projection's own transaction."""

from __future__ import annotations

from typing import Any, LiteralString

import msgspec
import psycopg

from authpi.eventstore.sqltext import render


class Checkpoint(msgspec.Struct, kw_only=True):
    source: str
    last_seq: int = 0
    last_tx: int = 0
    last_position: int = 0

    def covers(self, tx_id: int, position: int) -> bool:
        """True when (tx_id, position) of this source was already applied."""
        return (tx_id, position) <= (self.last_tx, self.last_position)


class Checkpoints:
    def __init__(self, schema: str, consumer: str) -> None:
        self.consumer = consumer
        self._load: LiteralString = render(
            "SELECT source, last_seq, last_tx::text, last_position FROM {schema}.checkpoints"
            " WHERE consumer = %s FOR UPDATE",
            schema=schema,
        )
        self._save: LiteralString = render(
            "INSERT INTO {schema}.checkpoints (consumer, source, last_seq, last_tx, last_position)"
            " VALUES (%s, %s, %s, %s::xid8, %s) ON CONFLICT (consumer, source) DO UPDATE SET"
            " last_seq = excluded.last_seq, last_tx = excluded.last_tx,"
            " last_position = excluded.last_position, updated_at = now()",
            schema=schema,
        )
        self._clear: LiteralString = render(
            "DELETE FROM {schema}.checkpoints WHERE consumer = %s", schema=schema
        )
        self._dead: LiteralString = render(
            "INSERT INTO {schema}.dead_letters (consumer, stream_seq, subject, event_id, error,"
            " payload, event_type, security) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            schema=schema,
        )

    async def load(self, conn: psycopg.AsyncConnection[Any]) -> dict[str, Checkpoint]:
        cur = await conn.execute(self._load, [self.consumer])
        return {
            r[0]: Checkpoint(source=r[0], last_seq=r[1], last_tx=int(r[2]), last_position=r[3])
            for r in await cur.fetchall()
        }

    async def save(self, conn: psycopg.AsyncConnection[Any], cps: dict[str, Checkpoint]) -> None:
        for cp in cps.values():
            await conn.execute(
                self._save,
                [self.consumer, cp.source, cp.last_seq, str(cp.last_tx), cp.last_position],
            )

    async def clear(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._clear, [self.consumer])

    async def dead_letter(
        self,
        conn: psycopg.AsyncConnection[Any],
        *,
        stream_seq: int,
        subject: str,
        event_id: str | None,
        error: str,
        payload: bytes,
        event_type: str | None = None,
        security: bool = False,
    ) -> None:
        await conn.execute(
            self._dead,
            [
                self.consumer, stream_seq, subject, event_id, error[:2000], payload,
                event_type, security,
            ],
        )  # fmt: skip
