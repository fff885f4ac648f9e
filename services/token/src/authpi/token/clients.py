"""What the token endpoint knows of a client, learnt from the directory's client.* events only.

`evolve` is the one fold of those events: the durable projection (clients_view, consumer
`token-clients`) stores its result, and every worker's in-memory ClientCache applies it to the
events it follows after loading that projection. An event at or below the entry's stream
version is a replay and changes nothing."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
from psycopg import sql

from authpi.contracts.base import Envelope, Event
from authpi.contracts.directory import (
    ClientBlocked,
    ClientCreated,
    ClientDeleted,
    ClientSecretRotated,
    ClientUnblocked,
    ClientUpdated,
)
from authpi.eventstore.store import StoredEvent

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


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(ClientEntry).decode


class ClientsProjection:
    """token-clients: the durable projection every worker's cache starts from."""

    name = "token-clients"
    event_types = (
        "client.created",
        "client.updated",
        "client.secret.rotated",
        "client.blocked",
        "client.unblocked",
        "client.deleted",
    )

    def __init__(self, schema: str) -> None:
        self.schema = schema
        q = sql.Identifier(schema)

        def render(text: str) -> str:
            return sql.SQL(text).format(q).as_string()

        self._get = render("SELECT data FROM {}.clients_view WHERE id = %s")
        self._upsert = render(
            "INSERT INTO {}.clients_view (id, issuer_id, data, version) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET issuer_id = excluded.issuer_id,"
            " data = excluded.data, version = excluded.version"
        )
        self._all = render("SELECT data FROM {}.clients_view")
        self._reset = render("TRUNCATE {}.clients_view")

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        cur = await conn.execute(self._get, [stored.stream_id])
        row = await cur.fetchone()
        current = None if row is None else _decode(_raw(row[0]))
        entry = evolve(current, stored.event, stored.stream_version, stored.meta.account_id)
        if entry is not None and entry is not current:
            await conn.execute(
                self._upsert, [entry.id, entry.issuer_id, _encode(entry).decode(), entry.version]
            )

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)

    async def load_into(self, conn: psycopg.AsyncConnection[Any], cache: ClientCache) -> None:
        cur = await conn.execute(self._all)
        cache.replace({e.id: e for e in (_decode(_raw(r[0])) for r in await cur.fetchall())})


def _raw(value: Any) -> bytes:
    """jsonb arrives decoded by psycopg; re-encode it for the typed decoder."""
    return value if isinstance(value, bytes) else _encode(value)


class ClientCache:
    """Per-process: client id -> entry. Read on every token, introspection and revocation."""

    def __init__(self) -> None:
        self._clients: dict[str, ClientEntry] = {}

    def get(self, client_id: str) -> ClientEntry | None:
        return self._clients.get(client_id)

    def replace(self, clients: dict[str, ClientEntry]) -> None:
        self._clients = clients

    def apply(self, env: Envelope, event: Event) -> None:
        current = self._clients.get(env.stream_id)
        entry = evolve(current, event, env.stream_version, env.meta.account_id)
        if entry is not None:
            self._clients[env.stream_id] = entry

    def __len__(self) -> int:
        return len(self._clients)
