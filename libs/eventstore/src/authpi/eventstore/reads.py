"""Reads on the hot paths (introspection's deny-list, a user, a page of users): a pooled
connection in autocommit for the block.

A pooled connection otherwise opens a transaction before the first statement and commits it on
the way back to the pool: `BEGIN`, the read, `COMMIT`, three round trips for one `SELECT`. At
PostgreSQL's default isolation (read committed) each statement takes its own snapshot in either
mode, so a block of reads sees exactly what it did inside that transaction, for a third of the
round trips. Only for blocks that write nothing: a write needs its transaction
(`conn.transaction()`, or the event store)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool


@contextlib.asynccontextmanager
async def reading(
    pool: AsyncConnectionPool,
) -> AsyncGenerator[psycopg.AsyncConnection[Any], None]:
    """A connection from `pool` in autocommit for the block, as it was once back in the pool."""
    async with pool.connection() as conn:
        if conn.autocommit:
            yield conn
            return
        await conn.set_autocommit(True)  # idle: no round trip
        try:
            yield conn
        finally:
            # A broken connection cannot be switched back; the pool discards it on return.
            with contextlib.suppress(psycopg.Error):
                await conn.set_autocommit(False)
