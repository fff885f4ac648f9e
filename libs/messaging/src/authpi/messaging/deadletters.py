"""What happens to a dead letter after the consumer rejected it: an alert when it is a security
event, counts on /metrics, a retention sweep, and the operator's redrive through the consumer's
own apply (`authpi dead-letters list|redrive`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import msgspec
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg_pool import AsyncConnectionPool

from authpi.contracts.catalogue import decode_envelope, decode_event
from authpi.crypto.clock import Clock
from authpi.eventstore.deadletters import DeadLetter, DeadLetterCount, DeadLetters
from authpi.messaging.consumer import to_stored
from authpi.messaging.projection import Projection
from authpi.messaging.security import is_security_event
from authpi.observability import get_logger

log = get_logger("authpi.deadletters")


class DeadLetterMonitor(Collector):
    """Alerts on each new dead letter and exposes them to Prometheus: a counter of the dead
    letters this process wrote, and a gauge of the rows waiting in every schema (refreshed by
    `run`, which also sweeps rows past their retention)."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        schemas: Sequence[str],
        clock: Clock,
        retention: timedelta,
        interval: float = 30.0,
        pools: Mapping[str, AsyncConnectionPool] | None = None,
    ) -> None:
        """`pools`: the pool to reach a schema through, where it is not `pool` (a process whose
        services connect each as its own database role)."""
        self.tables = [((pools or {}).get(s, pool), DeadLetters(s)) for s in schemas]
        self.clock = clock
        self.retention = retention
        self.interval = interval
        self.recorded: dict[tuple[str, str], int] = {}
        self.waiting: list[DeadLetterCount] = []
        self.task_failures: dict[str, int] = {}
        self._changed = asyncio.Event()

    def record(self, consumer: str, event_type: str | None, event_id: str | None) -> None:
        """Called by a consumer for each row it dead-letters."""
        key = (consumer, event_type or "")
        self.recorded[key] = self.recorded.get(key, 0) + 1
        if is_security_event(event_type):
            log.error(
                "dead_letter.security_event",
                consumer=consumer,
                event_type=event_type,
                event_id=event_id,
                action="authpi dead-letters list; authpi dead-letters redrive",
            )
        self._changed.set()

    def task_failed(self, task: str) -> None:
        """Called by the supervisor each time a background task (a cache follower) fails."""
        self.task_failures[task] = self.task_failures.get(task, 0) + 1

    async def refresh(self) -> None:
        counts: list[DeadLetterCount] = []
        for pool, table in self.tables:
            async with pool.connection() as conn:
                counts += await table.counts(conn)
        self.waiting = counts

    async def sweep(self) -> int:
        now = datetime.fromtimestamp(self.clock.now_ms() / 1000, tz=UTC)
        before = now - self.retention
        swept = 0
        for pool, table in self.tables:
            async with pool.connection() as conn:
                swept += await table.sweep(conn, before)
        if swept:
            log.info("dead_letters.swept", rows=swept, before=before.isoformat())
        return swept

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.sweep()
            await self.refresh()
            self._changed.clear()
            waits = {
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(self._changed.wait()),
            }
            _, pending = await asyncio.wait(
                waits, timeout=self.interval, return_when=asyncio.FIRST_COMPLETED
            )
            for fut in pending:
                fut.cancel()

    def collect(self) -> Iterator[Metric]:
        recorded = CounterMetricFamily(
            "authpi_dead_letters_recorded",
            "Messages this process dead-lettered, by consumer and event type",
            labels=["consumer", "event_type"],
        )
        for (consumer, event_type), n in sorted(self.recorded.items()):
            recorded.add_metric([consumer, event_type], n)
        waiting = GaugeMetricFamily(
            "authpi_dead_letters",
            "Dead letters waiting for a redrive, by consumer, event type and security",
            labels=["consumer", "event_type", "security"],
        )
        for c in self.waiting:
            waiting.add_metric([c.consumer, c.event_type, str(c.security).lower()], c.count)
        failures = CounterMetricFamily(
            "authpi_task_failures",
            "Background task failures (a cache follower that could not apply an event)",
            labels=["task"],
        )
        for task, n in sorted(self.task_failures.items()):
            failures.add_metric([task], n)
        yield from (recorded, waiting, failures)


class RedriveResult(msgspec.Struct, frozen=True, kw_only=True):
    redriven: list[int]
    failed: dict[int, str]


async def redrive(
    pool: AsyncConnectionPool,
    projection: Projection,
    ids: list[int] | None = None,
) -> RedriveResult:
    """Re-apply a consumer's dead letters through its projection's apply, one transaction each,
    and delete each row whose apply succeeds. A row that fails again stays, with the new
    error. Like any late redelivery, it applies out of stream order."""
    table = DeadLetters(projection.schema)
    async with pool.connection() as conn:
        rows = await table.list(conn, consumer=projection.name, ids=ids)
    done: list[int] = []
    failed: dict[int, str] = {}
    for row in rows:
        error = await _redrive_one(pool, projection, table, row)
        if error is None:
            done.append(row.id)
            log.info("dead_letter.redriven", consumer=row.consumer, id=row.id, type=row.event_type)
        else:
            failed[row.id] = error
            async with pool.connection() as conn:
                await table.record_failure(conn, row.id, error)
    return RedriveResult(redriven=done, failed=failed)


async def _redrive_one(
    pool: AsyncConnectionPool,
    projection: Projection,
    table: DeadLetters,
    row: DeadLetter,
) -> str | None:
    try:
        env = decode_envelope(row.payload)
        event = decode_event(env.data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return f"undecodable: {exc}"
    try:
        async with pool.connection() as conn, conn.transaction():
            await projection.apply(conn, to_stored(env, event))
            await table.delete(conn, row.id)
    except Exception as exc:  # the projection rejects it again: keep the row, say why
        return f"{type(exc).__name__}: {exc}"
    return None
