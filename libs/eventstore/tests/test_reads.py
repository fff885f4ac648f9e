"""`reading`: a pooled connection in autocommit for a block of reads (no BEGIN/COMMIT round
trips), handed back to the pool as it came, after an error too."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool

from authpi.eventstore.reads import reading
from authpi.testing.infra import Infra


async def test_reads_in_autocommit_and_restores(infra: Infra) -> None:
    async with AsyncConnectionPool(infra.dsn, min_size=1, max_size=1, open=False) as pool:
        async with pool.connection() as conn:
            pooled = conn
            assert not conn.autocommit
        async with reading(pool) as conn:
            assert conn is pooled and conn.autocommit
            cur = await conn.execute("SELECT 41 + 1")
            assert await cur.fetchone() == (42,)
            # No transaction was opened for the read.
            assert conn.info.transaction_status == TransactionStatus.IDLE
        with pytest.raises(psycopg.errors.UndefinedTable):
            async with reading(pool) as conn:
                await conn.execute("SELECT * FROM no_such_table_here")
        async with pool.connection() as conn:
            assert conn is pooled and not conn.autocommit  # as it came
            await conn.execute("SELECT 1")
            assert conn.info.transaction_status == TransactionStatus.INTRANS


async def test_keeps_an_autocommit_connection_as_it_is(infra: Infra) -> None:
    async with AsyncConnectionPool(
        infra.dsn, min_size=1, max_size=1, open=False, kwargs={"autocommit": True}
    ) as pool:
        async with reading(pool) as conn:
            assert conn.autocommit
        async with pool.connection() as conn:
            assert conn.autocommit
