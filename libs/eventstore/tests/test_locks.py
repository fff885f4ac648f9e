"""`run_holding`: a singleton task runs in the one process holding its lock; the others stand by
and one takes over when the holder's session ends, while the old holder stops its copy."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from authpi.eventstore.locks import run_holding, task_lock
from authpi.testing.infra import Infra
from authpi.testing.plugin import eventually


class Job:
    """Records which copies run, and the most that ever ran at once."""

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.started: list[str] = []
        self.most = 0

    def copy(self, name: str):
        async def run(stop: asyncio.Event) -> None:
            self.running.add(name)
            self.started.append(name)
            self.most = max(self.most, len(self.running))
            try:
                await stop.wait()
            finally:
                self.running.discard(name)

        return run


async def _holder_pid(dsn: str, key: str) -> int | None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
            " AND objid::bigint = (hashtext(%s)::bigint & 4294967295)",
            [key],
        )
        row = await cur.fetchone()
    return row[0] if row else None


async def test_one_copy_runs_and_another_takes_over(infra: Infra) -> None:
    key = task_lock("locks_test", f"job-{uuid.uuid4().hex[:8]}")
    job = Job()
    stop = asyncio.Event()

    def replica(name: str) -> asyncio.Task[None]:
        return asyncio.create_task(
            run_holding(infra.dsn, key, job.copy(name), stop, check_every=0.1, retry_every=0.1)
        )

    a = replica("a")
    await eventually(lambda: _async(job.running == {"a"}))
    b = replica("b")
    await asyncio.sleep(0.5)  # b stands by: it tried the lock several times
    assert job.running == {"a"} and job.started == ["a"]

    # a's session ends (as in a failover): b takes over, a stops its copy and fails.
    pid = await _holder_pid(infra.dsn, key)
    async with await psycopg.AsyncConnection.connect(infra.dsn, autocommit=True) as conn:
        await conn.execute("SELECT pg_terminate_backend(%s)", [pid])
    await eventually(lambda: _async(job.running == {"b"}))
    with pytest.raises(psycopg.OperationalError):
        await a
    assert job.started == ["a", "b"]

    stop.set()
    await b
    assert job.running == set()
    assert await _holder_pid(infra.dsn, key) is None


async def test_the_job_ends_with_the_stop_while_standing_by(infra: Infra) -> None:
    key = task_lock("locks_test", f"job-{uuid.uuid4().hex[:8]}")
    job = Job()
    stop, other = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(run_holding(infra.dsn, key, job.copy("a"), other))
    await eventually(lambda: _async(job.running == {"a"}))
    standby = asyncio.create_task(run_holding(infra.dsn, key, job.copy("b"), stop))
    await asyncio.sleep(0.3)
    stop.set()
    await standby  # returns without having run
    assert job.started == ["a"]
    other.set()
    await holder
    assert job.most == 1


async def _async(value: bool) -> bool:
    return value
