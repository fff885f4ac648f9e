"""Closing usage hours into ledger entries (platform.md 5.5, 5.10: one `usage` entry per
dimension per hour). Once an hour has ended, plus a grace period for facts still in flight, its
usage_hours row is priced with the current rate card and recorded as one entry; the same
transaction reserves the (account, dimension, hour) key and marks the row closed, only if its
count is still the one priced. So an hour is charged exactly once: a crash before the commit
leaves it open, and one after leaves it closed. Run once per deployment (a singleton task)."""

from __future__ import annotations

import asyncio
import contextlib

import msgspec
import psycopg
from psycopg.rows import class_row

from authpi.billing.domain.commands import RecordUsage
from authpi.billing.domain.rates import HOUR_MS, OPERATIONS, RateCard, period_bounds, period_of
from authpi.billing.handlers.ledger import USAGE_SCOPE, Ledger
from authpi.errors import Conflict
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import Tx
from authpi.observability import get_logger

log = get_logger("authpi.billing.metering")

_DUE = """
SELECT account_id, dimension, hour, count FROM {schema}.usage_hours
WHERE closed_entry_id IS NULL AND hour <= %s ORDER BY hour, account_id, dimension LIMIT %s
"""
_CLOSE = """
UPDATE {schema}.usage_hours SET closed_entry_id = %s
WHERE account_id = %s AND dimension = %s AND hour = %s AND closed_entry_id IS NULL AND count = %s
RETURNING hour
"""


# Accounts with a usage credit that lapsed in (since, now]: their unused remainder expires.
_LAPSED = """
SELECT DISTINCT account_id FROM {schema}.ledger_entries_view
WHERE type = 'grant' AND expires_at > %s AND expires_at <= %s
"""
EXPIRY_LOOKBACK_MS = 40 * 24 * 3_600_000


class OpenHour(msgspec.Struct, kw_only=True):
    account_id: str
    dimension: str
    hour: int
    count: int


class HourMoved(Exception):
    """The hour's count grew (or it was closed) between reading and closing: try again later."""


class Metering:
    def __init__(self, ledger: Ledger, rates: RateCard, *, grace_s: int, interval_s: float = 15.0):
        self.ledger = ledger
        self.rates = rates
        self.grace_ms = grace_s * 1000
        self.interval_s = interval_s
        schema = ledger.schema
        self._due = render(_DUE, schema=schema)
        self._close = render(_CLOSE, schema=schema)
        self._lapsed = render(_LAPSED, schema=schema)
        self._expired_through: int | None = None

    async def close_due(self, now: int | None = None, limit: int = 500) -> int:
        """Close every hour that ended at least the grace period before `now`; how many."""
        now = self.ledger.rt.clock.now_ms() if now is None else now
        async with self.ledger.rt.pool.connection() as conn:
            cur = conn.cursor(row_factory=class_row(OpenHour))
            await cur.execute(self._due, [now - self.grace_ms - HOUR_MS, limit])
            rows = await cur.fetchall()
        closed = 0
        for row in rows:
            try:
                await self.close_hour(row)
            except (HourMoved, Conflict):  # grown since read, or closed by another closer
                continue
            closed += 1
        return closed

    async def close_hour(self, row: OpenHour) -> str:
        card = self.rates
        period = period_of(row.hour)
        entry_id = self.ledger.rt.ids.new("cle")
        cmd = RecordUsage(
            entry_id=entry_id, dimension=row.dimension, operation=OPERATIONS[row.dimension],
            count=row.count, rate=card.rate(row.dimension), config_version=card.version,
            hour=row.hour, period=period, period_end=period_bounds(period)[1],
            monthly_credit=card.monthly_credit, grant_id=self.ledger.rt.ids.new("cle"),
            expiry_id=self.ledger.rt.ids.new("cle"), now=self.ledger.rt.clock.now_ms(),
            mode=self.ledger.mode,
        )  # fmt: skip

        async def close(tx: Tx) -> None:
            cur = await tx.conn.execute(
                self._close, [entry_id, row.account_id, row.dimension, row.hour, row.count]
            )
            if await cur.fetchone() is None:
                raise HourMoved(f"{row.account_id} {row.dimension} {row.hour}")
            await tx.reserve(USAGE_SCOPE, f"{row.account_id}|{row.dimension}|{row.hour}", entry_id)

        await self.ledger.run(row.account_id, cmd, reactions=(close,))
        return entry_id

    async def expire_due(self, now: int | None = None) -> int:
        """Expire the unused remainder of usage credits that lapsed since the last sweep (a
        lapsed grant also expires at the account's next usage entry; this covers idle accounts).
        Expiring an already expired or fully used grant records nothing."""
        now = self.ledger.rt.clock.now_ms() if now is None else now
        since = now - EXPIRY_LOOKBACK_MS if self._expired_through is None else self._expired_through
        async with self.ledger.rt.pool.connection() as conn:
            cur = await conn.execute(self._lapsed, [since, now])
            accounts = [str(row[0]) for row in await cur.fetchall()]
        for account_id in accounts:
            await self.ledger.expire_grants(account_id)
        self._expired_through = now
        return len(accounts)

    async def run(self, stop: asyncio.Event) -> None:
        """Singleton task: close due hours and expire lapsed credits, then wait."""
        while not stop.is_set():
            try:
                await self.close_due()
                await self.expire_due()
            except (psycopg.OperationalError, OSError) as exc:
                log.warning("usage.close_failed", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval_s)
