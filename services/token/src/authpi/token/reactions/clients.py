"""What the token endpoint knows of a client, learnt from the directory's client.* events only.

`evolve` is the one fold of those events: the durable projection (clients_view, consumer
`token-clients`) stores its result, and every worker's in-memory client cache applies it to the
events it follows after loading that projection. An event at or below the entry's stream
version is a replay and changes nothing."""

from __future__ import annotations

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.directory import (
    ClientBlocked,
    ClientCreated,
    ClientDeleted,
    ClientSecretRotated,
    ClientUnblocked,
    ClientUpdated,
)
from authpi.messaging.entries import EntryProjection

CLIENT_EVENTS = "client.>"


class ClientEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    issuer_id: str
    account_id: str
    status: str  # active | disabled | deleted
    confidential: bool
    grant_types: frozenset[str]
    scopes: tuple[str, ...]
    audiences: tuple[str, ...]
    access_token_ttl: int
    alg: str
    secret_sha256: str | None
    previous_sha256: str | None = None
    previous_valid_until: int | None = None
    version: int


def evolve(
    entry: ClientEntry | None, event: Event, version: int, account_id: str
) -> ClientEntry | None:
    if entry is not None and version <= entry.version:
        return entry
    match event:
        case ClientCreated() as e:
            c = e.config
            return ClientEntry(
                id=e.id,
                issuer_id=e.issuer_id,
                account_id=account_id,
                status=e.status,
                confidential=e.confidential,
                grant_types=frozenset(c.grant_types),
                scopes=tuple(c.scopes),
                audiences=tuple(c.audiences),
                access_token_ttl=c.access_token_ttl,
                alg=c.response_signature_alg,
                secret_sha256=e.secret_sha256,
                version=version,
            )
    if entry is None:
        return None
    match event:
        case ClientUpdated(config=c):
            return msgspec.structs.replace(
                entry,
                grant_types=frozenset(c.grant_types),
                scopes=tuple(c.scopes),
                audiences=tuple(c.audiences),
                access_token_ttl=c.access_token_ttl,
                alg=c.response_signature_alg,
                version=version,
            )
        case ClientSecretRotated() as e:
            return msgspec.structs.replace(
                entry,
                secret_sha256=e.secret_sha256,
                previous_sha256=e.previous_secret_sha256,
                previous_valid_until=e.previous_valid_until,
                version=version,
            )
        case ClientBlocked() | ClientUnblocked() as e:
            return msgspec.structs.replace(entry, status=e.status, version=version)
        case ClientDeleted():
            # Kept as a tombstone: ids are never reused, and a late replay cannot revive it.
            return msgspec.structs.replace(
                entry, status="deleted", secret_sha256=None, previous_sha256=None, version=version
            )
    return msgspec.structs.replace(entry, version=version)


CLIENTS_EVENT_TYPES = (
    "client.created",
    "client.updated",
    "client.secret.rotated",
    "client.blocked",
    "client.unblocked",
    "client.deleted",
)


def clients_projection(schema: str) -> EntryProjection[ClientEntry]:
    """token-clients: the durable projection every worker's client cache starts from."""
    return EntryProjection(
        name="token-clients", schema=schema, table="clients_view", event_types=CLIENTS_EVENT_TYPES,
        entry_type=ClientEntry, evolve=evolve,
    )  # fmt: skip
