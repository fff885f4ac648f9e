"""Session advisory locks: what makes relays, projection consumers and the services' singleton
tasks run once per deployment however many replicas run (DESIGN.md 5). The lock lives as long
as the connection that took it: when the holder dies, a replica standing by takes over."""

from __future__ import annotations

import asyncio
import contextlib
import time
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from authpi.observability import get_logger

log = get_logger("authpi.eventstore.locks")


def relay_lock(schema: str) -> str:
    return f"authpi.relay:{schema}"


def consumer_lock(schema: str, projection: str) -> str:
    """Held by a projection's consumer, and by `authpi replay` while it rebuilds it."""
    return f"authpi.consumer:{schema}:{projection}"


async def acquire(
    conn: psycopg.AsyncConnection[Any],
    key: str,
    *,
    stop: asyncio.Event | None = None,
    timeout: float | None = None,
    retry_every: float = 1.0,
    waiting: asyncio.Event | None = None,
) -> bool:
    """Take the lock on `conn`, retrying until `stop` is set or `timeout` passes (then False).
    `waiting` is set once the lock was found held: another process runs it, this one stands by
    (a replica of a service, which serves meanwhile and takes over when the holder is gone)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    stop = stop or asyncio.Event()
    while not stop.is_set():
        cur = await conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [key])
        row = await cur.fetchone()
        if row and row[0]:
            return True
        if waiting is not None:
            waiting.set()
        if deadline is not None and time.monotonic() >= deadline:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=retry_every)
    return False


def task_lock(schema: str, task: str) -> str:
    """Held by the replica that runs one of a service's singleton tasks (ServiceParts.tasks)."""
    return f"authpi.task:{schema}:{task}"


Job = Callable[[asyncio.Event], Awaitable[None]]
ANSWER_WITHIN_S = 10.0  # a holder's session that does not answer a check by then counts as gone


async def run_holding(
    dsn: str,
    key: str,
    job: Job,
    stop: asyncio.Event,
    *,
    check_every: float = 1.0,
    retry_every: float = 1.0,
    waiting: asyncio.Event | None = None,
) -> None:
    """Run `job` only while this process holds the session lock `key`: one copy per deployment.
    Another replica stands by in `acquire` and takes over within `retry_every` once the holder's
    session ends. When the holder's process dies, its job dies with it. When only its session
    ends (terminated, PostgreSQL restarted, the network cut), the holder sees it at its next
    check (every `check_every`) and stops the job, then this raises (the supervisor starts it
    again, to stand by or to hold the lock anew): the two copies may overlap by that much.
    `waiting` is set once the lock was found held by another process (see `acquire`)."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        if not await acquire(conn, key, stop=stop, retry_every=retry_every, waiting=waiting):
            return
        log.info("singleton.acquired", lock=key)
        inner = asyncio.Event()
        running: asyncio.Future[None] = asyncio.ensure_future(job(inner))
        try:
            while not running.done() and not stop.is_set():
                stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
                await asyncio.wait(
                    {running, stopping}, timeout=check_every, return_when=FIRST_COMPLETED
                )
                stopping.cancel()
                if running.done() or stop.is_set():
                    break
                await asyncio.wait_for(conn.execute("SELECT 1"), timeout=ANSWER_WITHIN_S)
        except Exception:
            log.warning("singleton.lost", lock=key)
            raise
        finally:
            inner.set()
            await running  # the job's own failure, if any, is the supervisor's to see
