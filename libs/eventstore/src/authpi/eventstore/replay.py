"""Rebuild a projection from the event store(s) through its own `apply()` (`authpi replay`).

Takes the projection's consumer lock, so it never runs beside the live consumer. It reads every
source schema in commit order below the snapshot xmin, and leaves per-source checkpoints at the
last replayed event; the stream-sequence checkpoint is kept, so the consumer resumes where it
was and skips what the replay already covered."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import psycopg

from authpi.contracts.base import Meta
from authpi.contracts.catalogue import decode_event
from authpi.eventstore.checkpoints import Checkpoint, Checkpoints
from authpi.eventstore.locks import acquire, consumer_lock
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent
from authpi.messaging.projection import Projection

_meta = msgspec.json.Decoder(Meta)


class ReplayLocked(Exception):
    pass


async def replay(
    dsn: str,
    projection: Projection,
    sources: Mapping[str, str],
    *,
    lock_timeout: float = 10.0,
    chunk: int = 5000,
) -> int:
    """`sources` maps a source service name to its schema. Returns the number of events applied.
    A projection may offer `apply_many(conn, events)` for a set-based rebuild; otherwise each
    event goes through `apply()` in pipeline mode."""
    key = consumer_lock(projection.schema, projection.name)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as lock:
        if not await acquire(lock, key, timeout=lock_timeout, retry_every=0.2):
            raise ReplayLocked(f"{projection.name} is being consumed; stop it first")
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            return await _rebuild(conn, projection, sources, chunk)


async def _rebuild(
    conn: psycopg.AsyncConnection[Any],
    projection: Projection,
    sources: Mapping[str, str],
    chunk: int,
) -> int:
    checkpoints = Checkpoints(projection.schema, projection.name)
    types = list(projection.event_types)
    count = 0
    async with conn.transaction():
        old = await checkpoints.load(conn)
        await projection.reset(conn)
        await checkpoints.clear(conn)
        new: dict[str, Checkpoint] = {}
        if "*" in old:
            new["*"] = old["*"]
        for source, schema in sources.items():
            query = render(
                "SELECT position, tx_id::text, event_id::text, stream_id, stream_version, type,"
                " schema_version, (extract(epoch from recorded_at) * 1000)::bigint,"
                " meta::text, data::text FROM {schema}.events AS e"
                " WHERE e.tx_id < pg_snapshot_xmin(pg_current_snapshot())"
                " AND (cardinality(%s::text[]) = 0 OR e.type = ANY(%s::text[]))"
                " ORDER BY e.tx_id, e.position",  # the xid8 column, not its text rendering
                schema=schema,
            )
            cur = conn.cursor(name=f"replay_{source}")
            cur.itersize = chunk
            await cur.execute(query, [types, types])
            last: tuple[int, int] | None = None
            bulk = getattr(projection, "apply_many", None)
            while rows := await cur.fetchmany(chunk):
                batch = [_stored(r) for r in rows]
                for run in _runs(batch):
                    # The projection's own set-based path takes a run of one type, as the
                    # store's group commits hand it (EventStore.project), and gives back what
                    # it left to `apply`, which then applies in commit order.
                    rest = await bulk(conn, run) if bulk is not None and len(run) > 1 else run
                    if rest:
                        async with conn.pipeline():
                            for stored in rest:
                                await projection.apply(conn, stored)
                last = (batch[-1].tx_id, batch[-1].position)
                count += len(rows)
            await cur.close()
            if last is not None:
                new[source] = Checkpoint(source=source, last_tx=last[0], last_position=last[1])
        await checkpoints.save(conn, new)
    return count


def _runs(batch: list[StoredEvent]) -> list[list[StoredEvent]]:
    """`batch` cut into runs of consecutive events of one type, in order."""
    runs: list[list[StoredEvent]] = []
    for stored in batch:
        if runs and runs[-1][0].type == stored.type:
            runs[-1].append(stored)
        else:
            runs.append([stored])
    return runs


def _stored(r: tuple[Any, ...]) -> StoredEvent:
    return StoredEvent(
        position=r[0],
        tx_id=int(r[1]),
        event_id=r[2],
        stream_id=r[3],
        stream_version=r[4],
        type=r[5],
        schema_version=r[6],
        recorded_at=r[7],
        meta=_meta.decode(r[8]),
        event=decode_event(r[9]),
    )
