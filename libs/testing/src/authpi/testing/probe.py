"""A projection used by the store/relay/consumer tests and the benchmarks: it records every
applied event with an apply counter, so 'exactly once in effect' and per-stream order are
observable from SQL."""

from __future__ import annotations

import time
from typing import Any, LiteralString

import psycopg

from authpi.contracts.base import Event, Meta
from authpi.contracts.directory import AccountUpdated
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent

DDL = """
CREATE TABLE IF NOT EXISTS {schema}.probe_applied (
    event_id       text PRIMARY KEY,
    stream_id      text NOT NULL,
    stream_version integer NOT NULL,
    apply_order    bigint GENERATED ALWAYS AS IDENTITY,
    applied_count  integer NOT NULL DEFAULT 1,
    recorded_at_ms bigint NOT NULL,
    applied_at_us  bigint NOT NULL
);
"""


class ProbeProjection:
    event_types: tuple[str, ...] = ()

    def __init__(self, schema: str, name: str = "test-probe", fail_on: str | None = None) -> None:
        self.schema = schema
        self.name = name
        self.fail_on = fail_on  # stream id whose events are rejected as poison
        self._upsert: LiteralString = render(
            "INSERT INTO {schema}.probe_applied (event_id, stream_id, stream_version,"
            " recorded_at_ms, applied_at_us) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (event_id)"
            " DO UPDATE SET applied_count = {schema}.probe_applied.applied_count + 1",
            schema=schema,
        )
        self._upsert_many: LiteralString = render(
            "INSERT INTO {schema}.probe_applied (event_id, stream_id, stream_version,"
            " recorded_at_ms, applied_at_us) SELECT e, s, v, r, %s FROM unnest(%s::text[],"
            " %s::text[], %s::int[], %s::bigint[]) WITH ORDINALITY AS u(e, s, v, r, ord)"
            " ORDER BY ord ON CONFLICT (event_id) DO UPDATE"
            " SET applied_count = {schema}.probe_applied.applied_count + 1",
            schema=schema,
        )
        self._reset: LiteralString = render("TRUNCATE {schema}.probe_applied", schema=schema)
        self._create: LiteralString = render(DDL, schema=schema)

    async def create(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._create)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        if self.fail_on is not None and stored.stream_id == self.fail_on:
            raise ValueError(f"cannot apply events of {stored.stream_id}")
        await conn.execute(
            self._upsert,
            [
                stored.event_id,
                stored.stream_id,
                stored.stream_version,
                stored.recorded_at,
                time.time_ns() // 1000,
            ],
        )

    async def apply_many(
        self, conn: psycopg.AsyncConnection[Any], batch: list[StoredEvent]
    ) -> None:
        """Set-based path for replay: one statement per batch."""
        now = time.time_ns() // 1000
        await conn.execute(
            self._upsert_many,
            [
                now,
                [s.event_id for s in batch],
                [s.stream_id for s in batch],
                [s.stream_version for s in batch],
                [s.recorded_at for s in batch],
            ],
        )

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)


class ProbeCommand:
    """Append `count` account.updated events to a stream (any state)."""

    def __init__(self, count: int = 1, now: int = 0) -> None:
        self.count = count
        self.now = now


class ProbeDecider:
    """A decider over a counter: enough to drive execute() in tests and benchmarks."""

    INITIAL: int = 0

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id

    def decide(self, cmd: ProbeCommand, state: int) -> list[Event]:
        return [
            AccountUpdated(id=self.stream_id, changed=["metadata"], metadata={"n": state + i},
                           updated_at=cmd.now)
            for i in range(cmd.count)
        ]  # fmt: skip

    def evolve(self, state: int, event: Event) -> int:
        return state + 1


def probe_event(stream_id: str, n: int = 0) -> AccountUpdated:
    return AccountUpdated(id=stream_id, changed=["metadata"], metadata={"n": n}, updated_at=0)


PROBE_META = Meta(account_id="acc_probe", trigger="system")
# Probe events are directory events (AccountUpdated): their relay must carry the directory's name,
# or every consumer refuses them as untrusted (authpi.messaging.provenance).
PROBE_SOURCE = "directory"
