"""What the token endpoint knows of a client, learnt from the directory's client.* events only.

`evolve` is the one fold of those events: the durable projection (clients_view, consumer
`token-clients`) stores its result, and every worker's in-memory client cache applies it to the
events it follows after loading that projection. An event at or below the entry's stream
version is a replay and changes nothing."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.directory import (
    ClientBlocked,
    ClientConfig,
    ClientCreated,
    ClientDeleted,
    ClientSecretRotated,
    ClientUnblocked,
    ClientUpdated,
    OrganizationRestriction,
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
    # Human login (authorization_code, refresh_token, logout); defaults for entries stored
    # before these fields existed.
    name: str = ""
    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    response_types: tuple[str, ...] = ()
    refresh_token_ttl: int = 604_800
    id_token_ttl: int = 1800
    organizations: OrganizationRestriction = OrganizationRestriction()


def _config(c: ClientConfig) -> dict[str, Any]:
    """The entry fields a client's config sets."""
    return {
        "grant_types": frozenset(c.grant_types),
        "scopes": tuple(c.scopes),
        "audiences": tuple(c.audiences),
        "access_token_ttl": c.access_token_ttl,
        "alg": c.response_signature_alg,
        "redirect_uris": tuple(c.redirect_uris),
        "post_logout_redirect_uris": tuple(c.post_logout_redirect_uris),
        "response_types": tuple(c.response_types),
        "refresh_token_ttl": c.refresh_token_ttl,
        "id_token_ttl": c.id_token_ttl,
        "organizations": c.organizations,
    }


def evolve(
    entry: ClientEntry | None, event: Event, version: int, account_id: str
) -> ClientEntry | None:
    if entry is not None and version <= entry.version:
        return entry
    match event:
        case ClientCreated() as e:
            return ClientEntry(
                id=e.id,
                issuer_id=e.issuer_id,
                account_id=account_id,
                status=e.status,
                confidential=e.confidential,
                name=e.name,
                secret_sha256=e.secret_sha256,
                version=version,
                **_config(e.config),
            )
    if entry is None:
        return None
    match event:
        case ClientUpdated() as e:
            return msgspec.structs.replace(entry, name=e.name, version=version, **_config(e.config))
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
