"""The write path of sessions (idp-api.md 11.1, core-api.md 3.11): one `session:<id>` stream per
session, through the event store, whose inline views (projections.sessions) follow in the same
transaction.

* `open_op`: a login opens an op session; the browser gets `<session id>.<secret>` and only the
  secret's SHA-256 is kept. A user has at most 50 live sessions of a type: opening the 51st
  expires the oldest (`evicted`).
* a code exchange opens the client's rp session and starts its refresh family, in one
  transaction, which also consumes the code (handlers.code_exchanges, with `evicted`).
* `revoke`: an op session takes its rp sessions with it; every refresh family of an ended session
  is revoked in the same transaction (no refresh after a revocation, not even a concurrent one:
  see domain.refresh_family).
* `compromise`: a replayed refresh token or code ends the rp session and its families."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import Any

from authpi.contracts.base import Meta
from authpi.contracts.sessions import Device
from authpi.crypto.clock import Clock
from authpi.crypto.ids import Ids, base62_secret
from authpi.errors import NotFound
from authpi.eventstore.store import EventStore, Outcome, Step, Tx
from authpi.observability import get_logger
from authpi.token.domain import refresh_family, session
from authpi.token.domain.refresh_family import RevokeFamily
from authpi.token.domain.session import (
    CompromiseSession,
    CreateSession,
    ExpireSession,
    ReactivateSession,
    RevokeSession,
    SuspendSession,
)
from authpi.token.queries.sessions import (
    MAX_LIVE_SESSIONS,
    FamilyRef,
    SessionQueries,
)

log = get_logger("authpi.token.sessions")
EXPIRY_EVERY_S = 60.0
DEFAULT_MAX_AGE_S = 7 * 24 * 3600
DEFAULT_IDLE_S = 12 * 3600


def session_stream(session_id: str) -> str:
    return f"session:{session_id}"


def refresh_stream(jti: str) -> str:
    return f"refresh:{jti}"


def cookie_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_cookie(cookie: str | None) -> tuple[str, str] | None:
    """(session id, secret) of an `authpi_session` value, or None when malformed."""
    if not cookie or len(cookie) > 200:
        return None
    session_id, sep, secret = cookie.partition(".")
    if not sep or not session_id.startswith("s_") or not secret:
        return None
    return session_id, secret


def family_end(family: FamilyRef, reason: str, now: int) -> Step[Any, Any]:
    """End a family on the stream of its current token (domain.refresh_family)."""
    cmd = RevokeFamily(
        family_id=family.id,
        issuer_id=family.issuer_id,
        session_id=family.session_id,
        jti=family.current_jti,
        reason=reason,
        revoked_at=now,
    )
    return Step(refresh_stream(family.current_jti), refresh_family, cmd)


class Sessions:
    def __init__(self, store: EventStore, queries: SessionQueries, ids: Ids, clock: Clock) -> None:
        self.store = store
        self.queries = queries
        self.ids = ids
        self.clock = clock

    async def open_op(
        self,
        *,
        issuer_id: str,
        account_id: str,
        user_id: str,
        method: str,
        device: Device,
        meta: Meta,
    ) -> tuple[str, str, int]:
        """A new op session: (session id, cookie value, absolute expiry in ms)."""
        now = self.clock.now_ms()
        session_id = self.ids.new("s")
        secret = base62_secret(32)
        settings = await self.queries.settings(None, issuer_id)
        max_age = settings.max_age if settings else DEFAULT_MAX_AGE_S
        idle = settings.idle_timeout if settings else DEFAULT_IDLE_S
        expires_at = now + max_age * 1000
        create = CreateSession(
            session_id=session_id,
            issuer_id=issuer_id,
            account_id=account_id,
            user_id=user_id,
            type="op",
            auth_method=method,
            auth_time=now,
            device=device,
            idle_timeout=idle,
            expires_at=expires_at,
            cookie_sha256=cookie_digest(secret),
            created_at=now,
        )

        async def plan(tx: Tx) -> list[Step[Any, Any]]:
            evicted = await self._evictions(tx, issuer_id, user_id, "op", now)
            return [*evicted, Step(session_stream(session_id), session, create, fresh=True)]

        await self.store.execute_all(plan, meta)
        return session_id, f"{session_id}.{secret}", expires_at

    async def _evictions(
        self, tx: Tx, issuer_id: str, user_id: str, type_: str, now: int
    ) -> list[Step[Any, Any]]:
        """Expire the oldest live sessions so that the new one is at most the 50th."""
        excess = await self.queries.evictable(
            tx.conn, issuer_id, user_id, type_, now, MAX_LIVE_SESSIONS - 1
        )
        return await self.evicted(tx, excess, now)

    async def evicted(self, tx: Tx, excess: list[str], now: int) -> list[Step[Any, Any]]:
        """Expire the sessions `excess` (evictable ones), with their refresh families."""
        if not excess:
            return []
        steps: list[Step[Any, Any]] = [
            Step(session_stream(s), session, ExpireSession(reason="evicted", at=now))
            for s in excess
        ]
        return steps + await self._family_ends(tx, excess, "session_ended", now)

    async def _family_ends(
        self, tx: Tx, session_ids: list[str], reason: str, now: int
    ) -> list[Step[Any, Any]]:
        families = await self.queries.active_families_of(tx.conn, session_ids)
        return [family_end(f, reason, now) for f in families]

    async def revoke(
        self,
        issuer_id: str,
        session_id: str,
        *,
        reason: str,
        by: str | None,
        meta: Meta,
        lenient: bool = False,
        if_match: str | None = None,
    ) -> list[Outcome[Any]]:
        """Revoke a session; an op session takes its rp sessions with it, and every refresh
        family of an ended session ends too."""
        now = self.clock.now_ms()

        async def plan(tx: Tx) -> list[Step[Any, Any]]:
            row = await self.queries.session(tx.conn, session_id)
            if row is None or row.issuer_id != issuer_id:
                raise NotFound("session not found", reason="session.not_found")
            cmd = RevokeSession(reason=reason, by=by, at=now, lenient=lenient, if_match=if_match)
            steps: list[Step[Any, Any]] = [Step(session_stream(session_id), session, cmd)]
            ended = [session_id]
            if row.type == "op":
                for rp in await self.queries.rp_sessions_of(tx.conn, session_id):
                    cascade = RevokeSession(
                        reason=reason, by=by, cascade_from=session_id, at=now, lenient=True
                    )
                    steps.append(Step(session_stream(rp), session, cascade))
                    ended.append(rp)
            return steps + await self._family_ends(tx, ended, "session_ended", now)

        return await self.store.execute_all(plan, meta)

    async def suspend(
        self,
        issuer_id: str,
        session_id: str,
        *,
        reason: str | None,
        by: str | None,
        meta: Meta,
        if_match: str | None = None,
    ) -> None:
        cmd = SuspendSession(reason=reason, by=by, at=self.clock.now_ms(), if_match=if_match)
        await self._one(issuer_id, session_id, cmd, meta)

    async def reactivate(
        self,
        issuer_id: str,
        session_id: str,
        *,
        by: str | None,
        meta: Meta,
        if_match: str | None = None,
    ) -> None:
        cmd = ReactivateSession(by=by, at=self.clock.now_ms(), if_match=if_match)
        await self._one(issuer_id, session_id, cmd, meta)

    async def _one(self, issuer_id: str, session_id: str, cmd: Any, meta: Meta) -> None:
        async def plan(tx: Tx) -> list[Step[Any, Any]]:
            row = await self.queries.session(tx.conn, session_id)
            if row is None or row.issuer_id != issuer_id:
                raise NotFound("session not found", reason="session.not_found")
            return [Step(session_stream(session_id), session, cmd)]

        await self.store.execute_all(plan, meta)

    async def expire(self, session_id: str, reason: str, meta: Meta) -> None:
        """A session found past its lifetime: expired, with its families."""
        now = self.clock.now_ms()

        async def plan(tx: Tx) -> list[Step[Any, Any]]:
            step = Step(session_stream(session_id), session, ExpireSession(reason=reason, at=now))
            return [step, *await self._family_ends(tx, [session_id], "session_ended", now)]

        await self.store.execute_all(plan, meta)

    async def expire_lapsed(self, batch: int = 500) -> int:
        """Expire every live session found past its absolute or idle lifetime (a refresh would
        refuse it anyway; this makes the status say so); how many."""
        expired = 0
        while True:
            lapsed = await self.queries.lapsed(self.clock.now_ms(), batch)
            for session_id, reason in lapsed:
                meta = Meta(account_id=await self._account(session_id), trigger="system")
                await self.expire(session_id, reason, meta)
                expired += 1
            if len(lapsed) < batch:
                return expired

    async def _account(self, session_id: str) -> str:
        row = await self.queries.session(None, session_id)
        return row.account_id if row else ""

    async def run_expiry(self, stop: asyncio.Event) -> None:
        """Background task, once per deployment: expire lapsed sessions every minute."""
        while not stop.is_set():
            try:
                await self.expire_lapsed()
            except Exception:  # the next round retries; a refresh refuses lapsed ones anyway
                log.exception("sessions.expiry_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=EXPIRY_EVERY_S)

    async def compromise(
        self, session_id: str, *, reason: str, jti: str | None, meta: Meta
    ) -> None:
        """A replay: the rp session is marked compromised and revoked, its families end."""
        now = self.clock.now_ms()

        async def plan(tx: Tx) -> list[Step[Any, Any]]:
            cmd = CompromiseSession(reason=reason, jti=jti, at=now)
            step = Step(session_stream(session_id), session, cmd)
            return [step, *await self._family_ends(tx, [session_id], "reuse", now)]

        await self.store.execute_all(plan, meta)
