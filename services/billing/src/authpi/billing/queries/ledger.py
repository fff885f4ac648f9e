"""Read-side SQL over the ledger: entries newest first by their store position, the balance,
usage lines of a period, and the reservations that make top-ups and usage hours idempotent."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
from psycopg.rows import class_row

from authpi.eventstore.sqltext import render


class EntryRow(msgspec.Struct, kw_only=True):
    entry_id: str
    account_id: str
    seq: int
    type: str
    amount: int
    balance_after: int
    operation: str | None
    reference: str | None
    related_entry_id: str | None
    expires_at: int | None
    dimension: str | None
    config_version: str | None
    external_reference: str | None
    settled_total: int | None
    count: int | None
    method_id: str | None
    period: str | None
    hour: int | None
    created_at: int


class UsageLineRow(msgspec.Struct, kw_only=True):
    period: str
    dimension: str
    operation: str
    config_version: str
    line_count: int
    amount: int
    count: int


class OpenUsageRow(msgspec.Struct, kw_only=True):
    dimension: str
    count: int


class PeriodTotalRow(msgspec.Struct, kw_only=True):
    period: str
    total: int


_ENTRIES = """
SELECT entry_id, account_id, seq, type, amount, balance_after, operation, reference,
  related_entry_id, expires_at, dimension, config_version, external_reference, settled_total,
  count, method_id, period, hour, created_at
FROM {schema}.ledger_entries_view
WHERE account_id = %(account)s AND (%(after)s::bigint IS NULL OR seq < %(after)s::bigint)
ORDER BY seq DESC LIMIT %(limit)s
"""
_ENTRY = """
SELECT entry_id, account_id, seq, type, amount, balance_after, operation, reference,
  related_entry_id, expires_at, dimension, config_version, external_reference, settled_total,
  count, method_id, period, hour, created_at
FROM {schema}.ledger_entries_view WHERE entry_id = %s
"""
_BALANCE = "SELECT balance FROM {schema}.balances_view WHERE account_id = %s"
_USAGE = """
SELECT period, dimension, operation, config_version, count(*) AS line_count,
  sum(settled_total)::bigint AS amount, sum(count)::bigint AS count
FROM {schema}.ledger_entries_view
WHERE account_id = %s AND type = 'usage' AND period = %s
GROUP BY period, dimension, operation, config_version
ORDER BY dimension, operation, config_version
"""
_OPEN_USAGE = """
SELECT dimension, sum(count)::bigint AS count FROM {schema}.usage_hours
WHERE account_id = %s AND closed_entry_id IS NULL AND hour >= %s AND hour < %s
GROUP BY dimension ORDER BY dimension
"""
_PERIODS = """
SELECT period, coalesce(sum(settled_total), 0)::bigint AS total
FROM {schema}.ledger_entries_view
WHERE account_id = %s AND type = 'usage' AND period IS NOT NULL
GROUP BY period ORDER BY period DESC LIMIT %s
"""
_RESERVED = "SELECT owner FROM {schema}.reservations WHERE scope = %s AND key = %s"


class LedgerQueries:
    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._entries = render(_ENTRIES, schema=schema)
        self._entry = render(_ENTRY, schema=schema)
        self._balance = render(_BALANCE, schema=schema)
        self._usage = render(_USAGE, schema=schema)
        self._open_usage = render(_OPEN_USAGE, schema=schema)
        self._periods = render(_PERIODS, schema=schema)
        self._reserved = render(_RESERVED, schema=schema)

    async def entries(
        self, conn: psycopg.AsyncConnection[Any], account_id: str, after: int | None, limit: int
    ) -> list[EntryRow]:
        cur = conn.cursor(row_factory=class_row(EntryRow))
        await cur.execute(self._entries, {"account": account_id, "after": after, "limit": limit})
        return await cur.fetchall()

    async def entry(self, conn: psycopg.AsyncConnection[Any], entry_id: str) -> EntryRow | None:
        cur = conn.cursor(row_factory=class_row(EntryRow))
        await cur.execute(self._entry, [entry_id])
        return await cur.fetchone()

    async def balance(self, conn: psycopg.AsyncConnection[Any], account_id: str) -> int:
        cur = await conn.execute(self._balance, [account_id])
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def usage(
        self, conn: psycopg.AsyncConnection[Any], account_id: str, period: str
    ) -> list[UsageLineRow]:
        cur = conn.cursor(row_factory=class_row(UsageLineRow))
        await cur.execute(self._usage, [account_id, period])
        return await cur.fetchall()

    async def open_usage(
        self, conn: psycopg.AsyncConnection[Any], account_id: str, start: int, end: int
    ) -> list[OpenUsageRow]:
        cur = conn.cursor(row_factory=class_row(OpenUsageRow))
        await cur.execute(self._open_usage, [account_id, start, end])
        return await cur.fetchall()

    async def period_totals(
        self, conn: psycopg.AsyncConnection[Any], account_id: str, limit: int
    ) -> list[PeriodTotalRow]:
        cur = conn.cursor(row_factory=class_row(PeriodTotalRow))
        await cur.execute(self._periods, [account_id, limit])
        return await cur.fetchall()

    async def reserved(
        self, conn: psycopg.AsyncConnection[Any], scope: str, key: str
    ) -> str | None:
        cur = await conn.execute(self._reserved, [scope, key])
        row = await cur.fetchone()
        return str(row[0]) if row else None
