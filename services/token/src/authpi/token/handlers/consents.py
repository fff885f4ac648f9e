"""The write path of consents (idp-api.md 4.3, 9): one `consent:<user>:<client>` stream. Revoking
a consent also ends that user's refresh families for the client (idp-api.md 14 #18: no silent
renewal once consent is withdrawn), in the same transaction."""

from __future__ import annotations

from typing import Any

from authpi.contracts.base import Meta
from authpi.crypto.clock import Clock
from authpi.eventstore.store import EventStore, Step, Tx
from authpi.token.domain import consent
from authpi.token.domain.consent import GrantConsent, RevokeConsent
from authpi.token.handlers.sessions import family_end
from authpi.token.queries.sessions import SessionQueries


def consent_stream(user_id: str, client_id: str) -> str:
    return f"consent:{user_id}:{client_id}"


class Consents:
    def __init__(self, store: EventStore, queries: SessionQueries, clock: Clock) -> None:
        self.store = store
        self.queries = queries
        self.clock = clock

    async def grant(
        self, *, issuer_id: str, user_id: str, client_id: str, scopes: list[str], meta: Meta
    ) -> None:
        cmd = GrantConsent(
            issuer_id=issuer_id,
            user_id=user_id,
            client_id=client_id,
            scopes=scopes,
            at=self.clock.now_ms(),
        )
        await self.store.execute(consent_stream(user_id, client_id), consent, cmd, meta)

    async def revoke(self, *, issuer_id: str, user_id: str, client_id: str, meta: Meta) -> None:
        now = self.clock.now_ms()
        cmd = RevokeConsent(issuer_id=issuer_id, user_id=user_id, client_id=client_id, at=now)

        async def plan(tx: Tx) -> list[Step[Any, Any]]:
            families = await self.queries.active_families_of_client(
                tx.conn, issuer_id, user_id, client_id
            )
            return [
                Step(consent_stream(user_id, client_id), consent, cmd),
                *(family_end(f, "consent_revoked", now) for f in families),
            ]

        await self.store.execute_all(plan, meta)
