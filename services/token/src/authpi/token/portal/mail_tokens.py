"""One-time tokens sent by mail (verify email, password reset, login link): ephemeral rows with
an expiry in the token service's `mail_tokens` table. The token itself (256 random bits) exists
only in the mail; the table holds its SHA-256. Consuming is one conditional UPDATE, so two
requests racing with the same link cannot both succeed."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

import msgspec
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from authpi.crypto.clock import Clock
from authpi.crypto.ids import Ids, sha256_hex
from authpi.eventstore.sqltext import render

Purpose = Literal["verify-email", "password-reset", "login-link"]
Status = Literal["ok", "used", "expired", "unknown"]

MINUTE_MS = 60_000
LIFETIMES_MS: dict[str, int] = {
    "verify-email": 24 * 60 * MINUTE_MS,
    "password-reset": 30 * MINUTE_MS,
    "login-link": 15 * MINUTE_MS,
}
MAX_TOKEN_CHARS = 128
SWEEP_EVERY_S = 3600.0  # ours are 43; anything longer is not one of ours


class MailToken(msgspec.Struct, frozen=True, kw_only=True):
    issuer_id: str
    user_id: str
    flow_id: str | None
    expires_at: int
    used_at: int | None


class Redeemed(msgspec.Struct, frozen=True, kw_only=True):
    status: Status
    token: MailToken | None = None


class MailTokens:
    def __init__(self, pool: AsyncConnectionPool, schema: str, clock: Clock, ids: Ids) -> None:
        self.pool = pool
        self.clock = clock
        self.ids = ids
        self._insert = render(
            "INSERT INTO {schema}.mail_tokens (token_hash, purpose, issuer_id, user_id, flow_id,"
            " created_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            schema=schema,
        )
        self._get = render(
            "SELECT issuer_id, user_id, flow_id, expires_at, used_at FROM {schema}.mail_tokens"
            " WHERE token_hash = %s AND purpose = %s AND issuer_id = %s",
            schema=schema,
        )
        self._use = render(
            "UPDATE {schema}.mail_tokens SET used_at = %s WHERE token_hash = %s"
            " AND purpose = %s AND issuer_id = %s AND used_at IS NULL AND expires_at > %s"
            " RETURNING issuer_id, user_id, flow_id, expires_at, used_at",
            schema=schema,
        )
        self._void = render(
            "UPDATE {schema}.mail_tokens SET used_at = %s WHERE user_id = %s AND purpose = %s"
            " AND used_at IS NULL",
            schema=schema,
        )
        self._sweep = render(
            "DELETE FROM {schema}.mail_tokens WHERE expires_at < %s", schema=schema
        )

    async def issue(
        self, purpose: Purpose, issuer_id: str, user_id: str, flow_id: str | None = None
    ) -> tuple[str, int]:
        """A new token and its expiry (Unix ms)."""
        token = self.ids.secret(32)
        now = self.clock.now_ms()
        expires_at = now + LIFETIMES_MS[purpose]
        async with self.pool.connection() as conn:
            await conn.execute(
                self._insert,
                [sha256_hex(token), purpose, issuer_id, user_id, flow_id, now, expires_at],
            )
        return token, expires_at

    async def peek(self, purpose: Purpose, issuer_id: str, token: str) -> Redeemed:
        """What `redeem` would answer, without using the token (a form shown before its POST)."""
        found = await self._find(purpose, issuer_id, token)
        if found is None:
            return Redeemed(status="unknown")
        if found.used_at is not None:
            return Redeemed(status="used", token=found)
        if found.expires_at <= self.clock.now_ms():
            return Redeemed(status="expired", token=found)
        return Redeemed(status="ok", token=found)

    async def redeem(self, purpose: Purpose, issuer_id: str, token: str) -> Redeemed:
        """Use the token once: `ok` the first time, then `used`."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return Redeemed(status="unknown")
        now = self.clock.now_ms()
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=class_row(MailToken))
            await cur.execute(self._use, [now, sha256_hex(token), purpose, issuer_id, now])
            used = await cur.fetchone()
        if used is not None:
            return Redeemed(status="ok", token=used)
        found = await self.peek(purpose, issuer_id, token)
        return found if found.status != "ok" else Redeemed(status="used", token=found.token)

    async def void(self, purpose: Purpose, user_id: str) -> None:
        """Use up every outstanding token of `purpose` for the user (after a reset, the other
        reset links stop working)."""
        async with self.pool.connection() as conn:
            await conn.execute(self._void, [self.clock.now_ms(), user_id, purpose])

    async def sweep(self, older_than_ms: int = 24 * 60 * MINUTE_MS) -> int:
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._sweep, [self.clock.now_ms() - older_than_ms])
            return cur.rowcount

    async def run_sweeper(self, stop: asyncio.Event) -> None:
        """Background task, once per deployment: drop tokens a day past their expiry (kept that
        long so that a late click is told the link expired, not that it is unknown)."""
        while not stop.is_set():
            await self.sweep()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=SWEEP_EVERY_S)

    async def _find(self, purpose: Purpose, issuer_id: str, token: str) -> MailToken | None:
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=class_row(MailToken))
            await cur.execute(self._get, [sha256_hex(token), purpose, issuer_id])
            return await cur.fetchone()
