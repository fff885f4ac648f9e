"""Retention of the audit log (platform.md 8: 90 days by default, AUTHPI_EVENTS_RETENTION_DAYS):
a singleton task that deletes rows older than the retention, in small batches so that no
statement holds many locks, once at start-up and then every hour."""

from __future__ import annotations

import asyncio
import contextlib

from psycopg_pool import AsyncConnectionPool

from authpi.crypto.clock import Clock
from authpi.observability import get_logger
from authpi.webhook.queries.events import sweep

log = get_logger("authpi.webhook.retention")
DAY_MS = 86_400_000


class AuditRetention:
    def __init__(
        self, pool: AsyncConnectionPool, schema: str, clock: Clock, days: int,
        every_s: float = 3600.0,
    ) -> None:  # fmt: skip
        self.pool = pool
        self.schema = schema
        self.clock = clock
        self.days = days
        self.every_s = every_s

    async def sweep_once(self) -> int:
        cutoff = self.clock.now_ms() - self.days * DAY_MS
        total = 0
        while True:
            async with self.pool.connection() as conn:
                deleted = await sweep(conn, self.schema, cutoff)
            total += deleted
            if deleted == 0:
                break
        if total:
            log.info("audit.swept", deleted=total, cutoff=cutoff)
        return total

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.sweep_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.every_s)
