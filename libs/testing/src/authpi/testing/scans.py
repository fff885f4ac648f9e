"""How many rows a piece of database work reads, from PostgreSQL's own per-transaction counters
(pg_stat_xact_user_tables): a test of a query's cost that does not depend on which plan the
planner prints, only on what the statement actually read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import psycopg


async def rows_read(
    dsn: str,
    schema: str,
    table: str,
    work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]],
) -> tuple[int, int]:
    """Run `work(conn)` in one transaction on a new connection whose statements are never
    prepared (as the relays' and tailers' are not), then roll back; return the rows it read from
    `schema.table`: (sequentially, through its indexes)."""
    async with await psycopg.AsyncConnection.connect(dsn, prepare_threshold=None) as conn:
        await work(conn)
        cur = await conn.execute(
            "SELECT seq_tup_read, coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables"
            " WHERE schemaname = %s AND relname = %s",
            [schema, table],
        )
        row = await cur.fetchone()
        await conn.rollback()
    assert row is not None, f"{schema}.{table} is not a table"
    return int(row[0]), int(row[1])
