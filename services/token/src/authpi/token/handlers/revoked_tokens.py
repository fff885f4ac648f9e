"""The write path of revocations (RFC 7009): one `revoked-token:<jti>` stream per token, through
the event store, which applies the deny-list (projections.revoked_tokens) in the same
transaction. Revoking a token already revoked, or revoked concurrently by another request,
decides nothing: the same successful outcome."""

from __future__ import annotations

from authpi.contracts.base import Meta
from authpi.eventstore.store import EventStore
from authpi.token.domain import revoked_token
from authpi.token.domain.commands import RevokeToken


def stream_of(jti: str) -> str:
    return f"revoked-token:{jti}"


class Revocations:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def revoke(self, cmd: RevokeToken, meta: Meta) -> None:
        await self.store.execute(stream_of(cmd.jti), revoked_token, cmd, meta)
