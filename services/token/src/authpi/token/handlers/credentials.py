"""The write path of credentials and sign-in attempts: a `credential:<user_id>` stream per user
(domain.credential) and an `auth-attempt:<uuid>` stream per recorded attempt
(domain.auth_attempt), through the event store, which applies credentials_view in the same
transaction."""

from __future__ import annotations

from authpi.contracts.base import Meta
from authpi.eventstore.store import EventStore
from authpi.token.domain import auth_attempt, credential
from authpi.token.domain.credential_commands import AttemptCommand, CredentialCommand


def stream_of(user_id: str) -> str:
    return f"credential:{user_id}"


class Credentials:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def execute(self, cmd: CredentialCommand, meta: Meta) -> credential.Credential:
        outcome = await self.store.execute(stream_of(cmd.user_id), credential, cmd, meta)
        return outcome.state

    async def record(self, cmd: AttemptCommand, meta: Meta) -> None:
        stream = f"auth-attempt:{self.store.ids.event_uuid()}"
        await self.store.execute(stream, auth_attempt, cmd, meta)
