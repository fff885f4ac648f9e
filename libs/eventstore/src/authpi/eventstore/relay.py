"""The relay (transactional outbox): publishes committed events of one service schema to
JetStream in commit order, with `Nats-Msg-Id` = event id.

It reads only rows whose transaction id is below the snapshot xmin, i.e. below every transaction
still in flight, so a transaction that took a lower position but commits late is never skipped
(STYLE.md 7). It is woken by LISTEN/NOTIFY, polls slowly as a safety net, and keeps a durable
(tx_id, position) cursor. One relay per schema runs at a time (a session advisory lock)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, LiteralString

import msgspec
import psycopg
from nats.js import JetStreamContext
from nats.js.api import PubAck

from authpi.contracts.subjects import subject_for
from authpi.eventstore.locks import acquire, relay_lock
from authpi.eventstore.sqltext import render
from authpi.observability import get_logger

log = get_logger("authpi.relay")


class WireEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """Same JSON shape as contracts.base.Envelope, with meta and data passed through verbatim."""

    source: str
    position: int
    tx_id: int
    event_id: str
    stream_id: str
    stream_version: int
    type: str
    schema_version: int
    recorded_at: int
    meta: msgspec.Raw
    data: msgspec.Raw


_encoder = msgspec.json.Encoder()


class Relay:
    def __init__(
        self,
        dsn: str,
        schema: str,
        source: str,
        js: JetStreamContext,
        namespace: str = "authpi",
        batch_size: int = 2000,
        poll_interval: float = 1.0,
        on_published: Callable[[int], None] | None = None,
        on_sequence: Callable[[str, int], None] | None = None,
    ) -> None:
        """`on_sequence(event_id, stream_sequence)` hears of each published event (the writer's
        read-your-writes wait learns from it where its events sit in the stream)."""
        self.dsn = dsn
        self.schema = schema
        self.source = source
        self.js = js
        self.namespace = namespace
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.on_published = on_published
        self.on_sequence = on_sequence
        self.published = 0
        self.running = asyncio.Event()
        # Running, or standing by while another process holds the lock (a service's replica
        # serves meanwhile, and takes over once the holder is gone).
        self.started = asyncio.Event()
        self._sql_read: LiteralString = render(
            "SELECT position, tx_id::text, event_id::text, stream_id, stream_version, type,"
            " schema_version, (extract(epoch from recorded_at) * 1000)::bigint,"
            " meta->>'account_id', meta::text, data::text"
            " FROM {schema}.events AS e"
            " WHERE (e.tx_id, e.position) > (%s::xid8, %s)"
            "   AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())"
            # e.tx_id, not the text column of the same name in the select list
            " ORDER BY e.tx_id, e.position LIMIT %s",
            schema=schema,
        )
        # Committed rows past the cursor that the snapshot xmin still holds back: another
        # transaction (of any schema) is in flight. No notice comes when it ends, so the relay
        # looks again shortly instead of waiting for the next notice or poll. The first row in
        # commit order, not EXISTS: under EXISTS the planner may expect an early match from a
        # sequential scan, which reads the whole table when nothing is past the cursor.
        self._sql_held: LiteralString = render(
            "SELECT 1 FROM {schema}.events AS e WHERE (e.tx_id, e.position) > (%s::xid8, %s)"
            " ORDER BY e.tx_id, e.position LIMIT 1",
            schema=schema,
        )
        self._sql_cursor: LiteralString = render(
            "SELECT tx_id::text, position FROM {schema}.relay_cursor", schema=schema
        )
        self._sql_store: LiteralString = render(
            "UPDATE {schema}.relay_cursor SET tx_id = %s::xid8, position = %s, updated_at = now()",
            schema=schema,
        )
        self._sql_listen: LiteralString = render("LISTEN {channel}", channel=f"{schema}_events")

    async def run(self, stop: asyncio.Event) -> None:
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as listen:
            if not await acquire(listen, relay_lock(self.schema), stop=stop, waiting=self.started):
                return
            await listen.execute(self._sql_listen)
            wake = asyncio.Event()
            listener = asyncio.create_task(self._listen(listen, wake))
            try:
                # Never prepared: a generic plan of the cursor comparisons (parameters unknown)
                # may scan the whole events table; planned with the cursor's values, the reads
                # walk events_commit_order from the cursor.
                async with await psycopg.AsyncConnection.connect(
                    self.dsn, autocommit=True, prepare_threshold=None
                ) as conn:
                    cur = await conn.execute(self._sql_cursor)
                    row = await cur.fetchone()
                    assert row is not None
                    cursor = (int(row[0]), int(row[1]))
                    self.running.set()
                    self.started.set()
                    log.info("relay.started", schema=self.schema, cursor=cursor)
                    held_for = 0.0
                    while not stop.is_set():
                        wake.clear()
                        cursor = await self.drain(conn, cursor)
                        # Held back: look again at 1, 2, 4 … ms (at most 50 ms apart).
                        held = await self.held_back(conn, cursor)
                        held_for = min(max(held_for * 2, 0.001), 0.05) if held else 0
                        await _first(
                            wake.wait(), stop.wait(), timeout=held_for or self.poll_interval
                        )
                        if listener.done():
                            listener.result()  # the LISTEN connection died: fail, be restarted
            finally:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    async def held_back(self, conn: psycopg.AsyncConnection, cursor: tuple[int, int]) -> bool:
        """Whether a row past `cursor` exists (committed or not yet visible): an index probe."""
        cur = await conn.execute(self._sql_held, [str(cursor[0]), cursor[1]])
        return await cur.fetchone() is not None

    @staticmethod
    async def _listen(conn: psycopg.AsyncConnection, wake: asyncio.Event) -> None:
        async for _ in conn.notifies():
            wake.set()

    async def drain(
        self, conn: psycopg.AsyncConnection, cursor: tuple[int, int]
    ) -> tuple[int, int]:
        """Publish everything committed past `cursor`; return the new cursor."""
        while True:
            cur = await conn.execute(self._sql_read, [str(cursor[0]), cursor[1], self.batch_size])
            rows = await cur.fetchall()
            if not rows:
                return cursor
            futures: list[asyncio.Future[PubAck]] = []
            for row in rows:
                env = WireEnvelope(
                    source=self.source,
                    position=row[0],
                    tx_id=int(row[1]),
                    event_id=row[2],
                    stream_id=row[3],
                    stream_version=row[4],
                    type=row[5],
                    schema_version=row[6],
                    recorded_at=row[7],
                    meta=msgspec.Raw(row[9].encode()),
                    data=msgspec.Raw(row[10].encode()),
                )
                futures.append(
                    # nats-py types `headers` as a bare Dict; the call itself is typed.
                    await self.js.publish_async(  # pyright: ignore[reportUnknownMemberType]
                        subject_for(row[8], row[5], self.namespace),
                        _encoder.encode(env),
                        headers={"Nats-Msg-Id": row[2]},
                    )
                )
            acks = await asyncio.gather(
                *futures
            )  # every ack, or raise: the cursor moves only after
            last = rows[-1]
            cursor = (int(last[1]), int(last[0]))
            await conn.execute(self._sql_store, [str(cursor[0]), cursor[1]])
            self.published += len(rows)
            if self.on_published is not None:
                self.on_published(len(rows))
            if self.on_sequence is not None:
                for row, ack in zip(rows, acks, strict=True):
                    self.on_sequence(row[2], ack.seq)


async def _first(*aws: Coroutine[Any, Any, Any], timeout: float) -> None:
    """Wait until the first of `aws` finishes or `timeout` passes; cancel the rest."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
