"""Verifying our own tokens (introspection, revocation) and the revocation deny-list.

A token verifies when its `kid` is one of the issuer's published keys, the signature holds with
that key's algorithm, `iss` is this issuer's URL and it has not expired. Revoking appends
`access-token.revoked` to the token service's store, with the deny-list row (an inline
projection) in the same transaction, so the very next introspection, in any worker, sees it.
A row is useless once its token has expired (verification refuses it first): a sweeper, once per
deployment, deletes the rows past `exp` by the injected clock, so the deny-list holds only live
tokens instead of growing forever."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import jwt
import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from authpi.contracts.base import Actor, Meta
from authpi.contracts.token import AccessTokenRevoked
from authpi.crypto.clock import Clock
from authpi.eventstore.store import EventStore, StoredEvent, VersionConflict
from authpi.observability import get_logger
from authpi.token.api.discovery import issuer_url
from authpi.token.cache import IssuerKeys
from authpi.token.clients import ClientEntry

log = get_logger("authpi.token.revocation")

CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "sid", "org_id")


class TokenVerifier:
    def __init__(self, idp_base: str, clock: Clock) -> None:
        self.idp_base = idp_base
        self.clock = clock

    def verify(self, issuer: IssuerKeys, token: str) -> dict[str, Any] | None:
        """The token's public claims, or None for anything not a live token of this issuer."""
        if len(token) > 8192:
            return None
        try:
            header = jwt.get_unverified_header(token)
            key = issuer.public.get(str(header.get("kid")))
            if key is None or header.get("alg") != key.algorithm_name:
                return None
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm_name],
                issuer=issuer_url(self.idp_base, issuer.issuer_id),
                # Time is checked below against the injected clock, not the wall clock.
                options={
                    "verify_aud": False,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["exp", "iat"],
                },
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            return None
        if int(claims["exp"]) <= self.clock.now_ms() // 1000:
            return None
        out = {name: claims[name] for name in CLAIMS if name in claims}
        out["token_type"] = "access_token" if header.get("typ") == "at+jwt" else "refresh_token"
        if "organizations" in claims:
            out["organizations"] = claims["organizations"]
        return out


class RevokedTokensView:
    name = "token-revoked-tokens"
    event_types = ("access-token.revoked",)

    def __init__(self, schema: str) -> None:
        self.schema = schema
        q = sql.Identifier(schema)
        self._insert = sql.SQL(
            "INSERT INTO {}.revoked_tokens (jti, issuer_id, client_id, token_type, expires_at,"
            " revoked_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (jti) DO NOTHING"
        ).format(q)
        self._reset = sql.SQL("TRUNCATE {}.revoked_tokens").format(q)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        e = stored.event
        if isinstance(e, AccessTokenRevoked):
            await conn.execute(
                self._insert,
                [e.jti, e.issuer_id, e.client_id, e.token_type, e.expires_at, e.revoked_at],
            )

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)


SWEEP_EVERY_S = 300.0
# A row outlives its token by this much: another process whose clock lags ours may still take
# the token for unexpired for a moment.
SWEEP_MARGIN_MS = 5 * 60 * 1000
SWEEP_BATCH = 10_000


class Revocations:
    def __init__(self, pool: AsyncConnectionPool, store: EventStore, schema: str, clock: Clock):
        self.pool = pool
        self.store = store
        self.clock = clock
        self.view = RevokedTokensView(schema)
        self._is_revoked = (
            sql.SQL("SELECT 1 FROM {}.revoked_tokens WHERE jti = %s")
            .format(sql.Identifier(schema))
            .as_string()
        )
        self._sweep = (
            sql.SQL(
                "DELETE FROM {0}.revoked_tokens WHERE jti IN (SELECT jti FROM"
                " {0}.revoked_tokens WHERE expires_at < %s LIMIT %s)"
            )
            .format(sql.Identifier(schema))
            .as_string()
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

    async def is_revoked(self, jti: str) -> bool:
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._is_revoked, [jti])
            return await cur.fetchone() is not None

    async def revoke(self, issuer: IssuerKeys, client: ClientEntry, claims: dict[str, Any]) -> None:
        jti = str(claims["jti"])
        event = AccessTokenRevoked(
            jti=jti,
            issuer_id=issuer.issuer_id,
            client_id=client.id,
            token_type=str(claims["token_type"]),
            expires_at=int(claims["exp"]) * 1000,
            revoked_at=self.clock.now_ms(),
        )
        meta = Meta(
            account_id=issuer.account_id,
            issuer_id=issuer.issuer_id,
            actor=Actor(type="client", client_id=client.id),
            trigger="idp",
        )
        stream_id = f"revoked-token:{jti}"
        try:
            async with self.pool.connection() as conn, conn.transaction():
                if await self.store.load(conn, stream_id):
                    return  # already revoked: RFC 7009 makes it a success all the same
                for stored in await self.store.append(conn, stream_id, 0, [event], meta):
                    await self.view.apply(conn, stored)
        except VersionConflict:
            return  # revoked concurrently by another request: the same outcome
