"""Tailing the audit log in commit order: the one loop behind everything the audit log feeds
downstream (the public-stream relay, the webhook fan-out). A `Tailer` reads the rows past its
durable cursor, only below the snapshot xmin (migration 0001: a row that commits late with a lower
seq is never skipped), hands each batch to its `handle` inside a transaction that also moves the
cursor, and is woken by the audit log's NOTIFY, with a slow poll as the safety net. One copy per
deployment runs (a session advisory lock); a second one waits."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, LiteralString

import psycopg

from authpi.eventstore.locks import acquire
from authpi.eventstore.sqltext import render
from authpi.observability import get_logger
from authpi.webhook.reactions.audit import AuditColumns

log = get_logger("authpi.webhook.tailer")


class AuditRow(AuditColumns, frozen=True, kw_only=True):
    seq: int
    tx_id: int
    event: bytes  # the public event's JSON, as stored (contracts.public.PublicEvent)


# The event as its UTF-8 bytes: `event::text::bytea` would read the JSON's escapes (`\"`,
# `\u0001`, `\\`) as bytea escapes, failing on a quote in a name and corrupting a backslash.
_COLUMNS = (
    "seq, tx_id::text::bigint, id, account_id, type, occurred_at, issuer_id, user_id, client_id,"
    " agent_id, org_id, convert_to(event::text, 'UTF8')"
)


class Tailer:
    """Subclasses name themselves (`name`, the cursor row) and implement `handle`."""

    name: str = ""

    def __init__(
        self, dsn: str, schema: str, *, batch_size: int = 500, poll_interval: float = 1.0
    ) -> None:
        self.dsn = dsn
        self.schema = schema
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.running = asyncio.Event()
        self._sql_read: LiteralString = render(
            "SELECT " + _COLUMNS + " FROM {schema}.audit_events AS a"
            " WHERE (a.tx_id, a.seq) > (%s::text::xid8, %s)"
            "   AND a.tx_id < pg_snapshot_xmin(pg_current_snapshot())"
            " ORDER BY a.tx_id, a.seq LIMIT %s",
            schema=schema,
        )
        self._sql_last: LiteralString = render(
            "SELECT a.tx_id::text::bigint, a.seq FROM {schema}.audit_events AS a"
            " WHERE (a.tx_id, a.seq) > (%s::text::xid8, %s)"
            "   AND a.tx_id < pg_snapshot_xmin(pg_current_snapshot())"
            " ORDER BY a.tx_id DESC, a.seq DESC LIMIT 1",
            schema=schema,
        )
        # The first row in commit order, not EXISTS, which the planner may answer with a
        # sequential scan of the whole log when nothing is past the cursor (relay.py).
        self._sql_held: LiteralString = render(
            "SELECT 1 FROM {schema}.audit_events AS a WHERE (a.tx_id, a.seq) > (%s::text::xid8, %s)"
            " ORDER BY a.tx_id, a.seq LIMIT 1",
            schema=schema,
        )
        self._sql_cursor: LiteralString = render(
            "INSERT INTO {schema}.audit_cursors (name) VALUES (%s) ON CONFLICT (name) DO UPDATE"
            " SET name = EXCLUDED.name RETURNING tx_id::text::bigint, seq",
            schema=schema,
        )
        self._sql_store: LiteralString = render(
            "UPDATE {schema}.audit_cursors SET tx_id = %s::text::xid8, seq = %s,"
            " updated_at = now() WHERE name = %s",
            schema=schema,
        )
        self._sql_listen: LiteralString = render("LISTEN {channel}", channel=f"{schema}_audit")

    async def handle(self, conn: psycopg.AsyncConnection[Any], rows: list[AuditRow]) -> None:
        """Act on one batch, in order, inside the transaction that then moves the cursor. Raise to
        leave the cursor where it was (the batch comes again)."""
        raise NotImplementedError

    async def wanted(self, conn: psycopg.AsyncConnection[Any]) -> bool:
        """Whether the rows past the cursor are to be read at all. A tailer with nothing to do
        with them now (a fan-out with no webhook to feed) answers False, and its cursor moves past
        them unread, as if `handle` had done nothing with each batch."""
        return True

    async def run(self, stop: asyncio.Event) -> None:
        assert self.name, "a Tailer needs a name"
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as listen:
            lock = f"authpi.tailer:{self.schema}:{self.name}"
            if not await acquire(listen, lock, stop=stop):
                return
            await listen.execute(self._sql_listen)
            wake = asyncio.Event()
            listener = asyncio.create_task(_listen(listen, wake))
            try:
                # Never prepared: planned with the cursor's values, both reads walk the commit
                # order index from the cursor (a generic plan scans the table).
                async with await psycopg.AsyncConnection.connect(
                    self.dsn, autocommit=True, prepare_threshold=None
                ) as conn:
                    cursor = await self._load(conn)
                    self.running.set()
                    log.info("tailer.started", tailer=self.name, cursor=cursor)
                    held_for = 0.0
                    while not stop.is_set():
                        wake.clear()
                        cursor = await self.drain(conn, cursor)
                        # Held back by a transaction in flight: look again at 1, 2, 4 … ms.
                        held = await self.held_back(conn, cursor)
                        held_for = min(max(held_for * 2, 0.001), 0.05) if held else 0
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(
                                _either(wake, stop), timeout=held_for or self.poll_interval
                            )
                        if listener.done():
                            listener.result()  # the LISTEN connection died: fail, be restarted
            finally:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    async def held_back(self, conn: psycopg.AsyncConnection[Any], cursor: tuple[int, int]) -> bool:
        """Whether a row past `cursor` exists (committed or not yet visible): an index probe."""
        cur = await conn.execute(self._sql_held, [str(cursor[0]), cursor[1]])
        return await cur.fetchone() is not None

    async def _load(self, conn: psycopg.AsyncConnection[Any]) -> tuple[int, int]:
        cur = await conn.execute(self._sql_cursor, [self.name])
        row = await cur.fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    async def drain(
        self, conn: psycopg.AsyncConnection[Any], cursor: tuple[int, int]
    ) -> tuple[int, int]:
        """Handle everything visible past `cursor`; return the new cursor."""
        if not await self.wanted(conn):
            cur = await conn.execute(self._sql_last, [str(cursor[0]), cursor[1]])
            last = await cur.fetchone()
            if last is None:
                return cursor
            await conn.execute(self._sql_store, [str(last[0]), last[1], self.name])
            return int(last[0]), int(last[1])
        while True:
            # Results in binary: the event's bytes come as they are (in text, as hex to decode).
            cur = await conn.execute(
                self._sql_read, [str(cursor[0]), cursor[1], self.batch_size], binary=True
            )
            rows = [_row(r) for r in await cur.fetchall()]
            if not rows:
                return cursor
            async with conn.transaction():
                await self.handle(conn, rows)
                last = rows[-1]
                await conn.execute(self._sql_store, [str(last.tx_id), last.seq, self.name])
            cursor = (last.tx_id, last.seq)


def _row(r: tuple[Any, ...]) -> AuditRow:
    return AuditRow(
        seq=r[0], tx_id=r[1], id=r[2], account_id=r[3], type=r[4], occurred_at=r[5],
        issuer_id=r[6], user_id=r[7], client_id=r[8], agent_id=r[9], org_id=r[10], event=r[11],
    )  # fmt: skip


async def _listen(conn: psycopg.AsyncConnection[Any], wake: asyncio.Event) -> None:
    async for _ in conn.notifies():
        wake.set()


async def _either(a: asyncio.Event, b: asyncio.Event) -> None:
    tasks = [asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
