"""The write path of credentials and sign-in attempts: a `credential:<user_id>` stream per user
(domain.credential) and an `auth-attempt:<uuid>` stream per recorded attempt
(domain.auth_attempt), through the event store, which applies credentials_view in the same
transaction."""

from __future__ import annotations

import asyncio
from collections import Counter

from authpi.contracts.base import Meta
from authpi.eventstore.store import EventStore
from authpi.token.domain import auth_attempt, credential
from authpi.token.domain.credential_commands import AttemptCommand, CredentialCommand


def stream_of(user_id: str) -> str:
    return f"credential:{user_id}"


class Credentials:
    def __init__(self, store: EventStore) -> None:
        self.store = store
        # Commands on one user's stream from this process run one after the other: a burst of
        # them (the portal's mail jobs run several at a time) would otherwise race for the same
        # stream version and could exhaust the store's retries. Other processes still meet
        # only the store's optimistic concurrency.
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: Counter[str] = Counter()

    async def execute(self, cmd: CredentialCommand, meta: Meta) -> credential.Credential:
        stream = stream_of(cmd.user_id)
        lock = self._locks.setdefault(stream, asyncio.Lock())
        self._users[stream] += 1
        try:
            async with lock:
                outcome = await self.store.execute(stream, credential, cmd, meta)
        finally:
            self._users[stream] -= 1
            if not self._users[stream]:
                del self._users[stream], self._locks[stream]
        return outcome.state

    async def record(self, cmd: AttemptCommand, meta: Meta) -> None:
        stream = f"auth-attempt:{self.store.ids.event_uuid()}"
        await self.store.execute(stream, auth_attempt, cmd, meta)
