"""revoked_tokens: the deny-list of revoked tokens, an inline projection of
`access-token.revoked`, so the very next introspection, in any worker, sees a revocation.

A row is useless once its token has expired (verification refuses it first): a sweeper, once per
deployment, deletes the rows past `exp` by the injected clock, so the deny-list holds only live
tokens instead of growing forever."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from authpi.contracts.token import AccessTokenRevoked
from authpi.crypto.clock import Clock
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent
from authpi.observability import get_logger

log = get_logger("authpi.token.revocation")

SWEEP_EVERY_S = 300.0
# A row outlives its token by this much: another process whose clock lags ours may still take
# the token for unexpired for a moment.
SWEEP_MARGIN_MS = 5 * 60 * 1000
SWEEP_BATCH = 10_000


class RevokedTokensView:
    name = "token-revoked-tokens"
    event_types = ("access-token.revoked",)

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._insert = render(
            "INSERT INTO {schema}.revoked_tokens (jti, issuer_id, client_id, token_type,"
            " expires_at, revoked_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (jti) DO NOTHING",
            schema=schema,
        )
        self._reset = render("TRUNCATE {schema}.revoked_tokens", schema=schema)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        e = stored.event
        if isinstance(e, AccessTokenRevoked):
            await conn.execute(
                self._insert,
                [e.jti, e.issuer_id, e.client_id, e.token_type, e.expires_at, e.revoked_at],
            )

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)


class RevokedTokensSweeper:
    """Deletes the deny-list rows of tokens past `exp` (by the margin)."""

    def __init__(self, pool: AsyncConnectionPool, schema: str, clock: Clock) -> None:
        self.pool = pool
        self.clock = clock
        self._sweep = render(
            "DELETE FROM {schema}.revoked_tokens WHERE jti IN (SELECT jti FROM"
            " {schema}.revoked_tokens WHERE expires_at < %s LIMIT %s)",
            schema=schema,
        )

    async def sweep(self) -> int:
        """Delete the rows of tokens past `exp` (by the margin); how many went."""
        cutoff = self.clock.now_ms() - SWEEP_MARGIN_MS
        removed = 0
        while True:
            async with self.pool.connection() as conn:
                cur = await conn.execute(self._sweep, [cutoff, SWEEP_BATCH])
                removed += cur.rowcount
            if cur.rowcount < SWEEP_BATCH:
                return removed

    async def run_sweeper(self, stop: asyncio.Event) -> None:
        """Background task, once per deployment: sweep, then wait."""
        while not stop.is_set():
            removed = await self.sweep()
            if removed:
                log.info("revoked_tokens.swept", removed=removed)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=SWEEP_EVERY_S)
