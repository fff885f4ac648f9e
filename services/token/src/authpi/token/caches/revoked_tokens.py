"""The per-process deny-list of revoked tokens, read by introspection and userinfo: jti -> the
token's expiry, in memory, so a request never waits on the database for it.

Loaded from the revoked_tokens view (projections.revoked_tokens, an inline projection: written in
the revocation's own transaction, so it has no checkpoint) after reading the stream's last
sequence, then following `access-token.revoked` from there (messaging.follower, `inline`).

Read-your-writes (messaging.sync): the follower is a tracked `Progress`, so a write barrier for an
`access-token.revoked` sequence waits for this deny-list in every process. A revocation written
by this process (the revocation endpoint, a replayed code) waits until its event comes back here
from the stream, which tells its sequence, then holds its answer until every process of the
deployment has applied that sequence (`applied_everywhere`): the next introspection, in any
process, reads the token as inactive.

An entry is useless once its token has expired (verification refuses it first): entries past
`exp`, by the view sweeper's margin, are dropped as the clock passes them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, LiteralString

import psycopg

from authpi.contracts.base import Envelope, Event
from authpi.contracts.token import AccessTokenRevoked
from authpi.crypto.clock import Clock
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent
from authpi.messaging.follower import Feed, FollowedCache
from authpi.messaging.sync import WRITE_WAIT_S, Publications, Sync
from authpi.observability import get_logger
from authpi.token.projections.revoked_tokens import SWEEP_MARGIN_MS

log = get_logger("authpi.token.revocation")

EVENT_TYPE = "access-token.revoked"
PRUNE_EVERY_MS = 60_000
KEEP_SEQS = 10_000  # event id -> stream sequence, for this process's own writes' barriers


class DenyList(FollowedCache):
    def __init__(self, feed: Feed, schema: str, clock: Clock) -> None:
        self.clock = clock
        self._expires: dict[str, int] = {}  # jti -> the token's expiry (ms)
        self._seqs = Publications(keep=KEEP_SEQS)  # event id -> stream sequence, as applied here
        self._pruned = 0
        self._all: LiteralString = render(
            "SELECT jti, expires_at FROM {schema}.revoked_tokens", schema=schema
        )
        super().__init__(feed, consumer="token-deny-list", event_types=EVENT_TYPE, inline=True)

    def revoked(self, jti: str) -> bool:
        return jti in self._expires

    def __len__(self) -> int:
        return len(self._expires)

    async def load(self, conn: psycopg.AsyncConnection[Any]) -> None:
        cur = await conn.execute(self._all)
        self._expires = {str(jti): int(expires_at) for jti, expires_at in await cur.fetchall()}
        self._pruned = self.clock.now_ms()

    def receive(self, env: Envelope, event: Event) -> None:
        if isinstance(event, AccessTokenRevoked):
            self._expires[event.jti] = event.expires_at
        self._seqs.published(env.event_id, self.follower.seq)
        self._prune()

    def _prune(self) -> None:
        now = self.clock.now_ms()
        if now - self._pruned < PRUNE_EVERY_MS:
            return
        self._pruned = now
        cutoff = now - SWEEP_MARGIN_MS
        for jti in [j for j, exp in self._expires.items() if exp < cutoff]:
            del self._expires[jti]

    async def seq_of(self, event_id: str, timeout: float) -> int | None:
        """The stream sequence of an event this deny-list has applied, once it has."""
        return await self._seqs.seq_of(event_id, timeout)

    async def applied_everywhere(
        self, sync: Sync, written: Sequence[StoredEvent], timeout: float = WRITE_WAIT_S
    ) -> bool:
        """Until every process's deny-list has applied the revocations in `written`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        targets: list[tuple[str, int]] = []
        for stored in written:
            if stored.type != EVENT_TYPE:
                continue
            seq = await self.seq_of(stored.event_id, max(deadline - loop.time(), 0.0))
            if seq is None:
                log.warning("deny_list.unseen", event_id=stored.event_id)
                return False
            targets.append((EVENT_TYPE, seq))
        return await sync.wait_sequences(targets, max(deadline - loop.time(), 0.0))
