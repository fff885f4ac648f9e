"""The write path of revocations (RFC 7009): one `revoked-token:<jti>` stream per token, through
the event store, which applies the deny-list (projections.revoked_tokens) in the same
transaction. Revoking a token already revoked, or revoked concurrently by another request,
decides nothing: the same successful outcome. Once committed, a revocation waits (bounded) until
every process's deny-list holds it (caches.revoked_tokens), so the next introspection anywhere
reads the token as inactive."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from authpi.contracts.base import Meta
from authpi.eventstore.store import EventStore, StoredEvent
from authpi.token.domain import revoked_token
from authpi.token.domain.commands import RevokeToken


def stream_of(jti: str) -> str:
    return f"revoked-token:{jti}"


Applied = Callable[[Sequence[StoredEvent]], Awaitable[bool]]


class Revocations:
    def __init__(self, store: EventStore, applied: Applied | None = None) -> None:
        """`applied`: waits until every process's deny-list has the written revocations."""
        self.store = store
        self.applied = applied

    async def revoke(self, cmd: RevokeToken, meta: Meta) -> None:
        outcome = await self.store.execute(stream_of(cmd.jti), revoked_token, cmd, meta)
        if self.applied is not None and outcome.events:
            await self.applied(outcome.events)
