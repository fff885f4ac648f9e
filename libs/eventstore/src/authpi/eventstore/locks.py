"""Session advisory locks: what makes relays and projection consumers run once per deployment
(DESIGN.md 5). The lock lives as long as the connection that took it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import psycopg


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
