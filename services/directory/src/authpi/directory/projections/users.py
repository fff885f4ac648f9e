"""users_view: inline projection of User events. It decrypts PII with the user's data key while
the key exists; after deletion (key shredded) it keeps no clear value, only the index record
(username hash, status, store and region). A replay after deletion finds no key and so writes
no clear value either."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
from psycopg import sql

from authpi.contracts.directory import (
    UserBlocked,
    UserCreated,
    UserDeleted,
    UserUnblocked,
    UserUpdated,
)
from authpi.directory.pii import Pii, PiiVault
from authpi.eventstore.store import StoredEvent

_json = msgspec.json.Encoder()


def _j(value: object) -> str:
    return _json.encode(value).decode()


class UsersView:
    name = "directory-users"
    event_types = ("user.created", "user.updated", "user.blocked", "user.unblocked", "user.deleted")

    def __init__(self, schema: str, vault: PiiVault) -> None:
        self.schema = schema
        self.vault = vault
        q = sql.Identifier(schema)
        self._insert = (
            sql.SQL(
                "INSERT INTO {}.users_view (id, account_id, issuer_id, username_hash,"
                " username_type, status, region, store_id, username, profile, custom_fields,"
                " addresses, scopes, metadata, version, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb,"
                " %s::jsonb, %s::jsonb, %s, %s)"
                " ON CONFLICT (id) DO NOTHING"
            )
            .format(q)
            .as_string()
        )
        self._pii = (
            sql.SQL(
                "UPDATE {}.users_view SET username = %s, profile = %s::jsonb,"
                " custom_fields = %s::jsonb, addresses = %s::jsonb WHERE id = %s"
            )
            .format(q)
            .as_string()
        )
        self._update = (
            sql.SQL(
                "UPDATE {}.users_view SET username_hash = coalesce(%s, username_hash),"
                " scopes = coalesce(%s::jsonb, scopes), metadata = coalesce(%s::jsonb, metadata),"
                " version = %s, updated_at = %s WHERE id = %s"
            )
            .format(q)
            .as_string()
        )
        self._status = (
            sql.SQL(
                "UPDATE {}.users_view SET status = %s, status_at = %s, status_reason = %s,"
                " status_by = %s, version = %s, updated_at = %s WHERE id = %s"
            )
            .format(q)
            .as_string()
        )
        self._delete = (
            sql.SQL(
                "UPDATE {}.users_view SET status = 'deleted', status_at = %s, deleted_at = %s,"
                " username = NULL, profile = '{{}}', custom_fields = '{{}}', addresses = '[]',"
                " version = %s, updated_at = %s WHERE id = %s"
            )
            .format(q)
            .as_string()
        )
        self._reset = sql.SQL("TRUNCATE {}.users_view").format(q).as_string()

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        v = stored.stream_version
        match stored.event:
            case UserCreated() as e:
                pii = await self._open(conn, e.id, e.pii)
                await conn.execute(
                    self._insert,
                    [
                        e.id,
                        stored.meta.account_id,
                        e.issuer_id,
                        e.username_hash,
                        e.username_type,
                        e.status,
                        e.region,
                        e.store_id,
                        *_clear(pii),
                        _j(e.scopes),
                        _j(e.metadata),
                        v,
                        e.created_at,
                    ],
                )
            case UserUpdated() as e:
                if e.pii is not None:
                    pii = await self._open(conn, e.id, e.pii)
                    await conn.execute(self._pii, [*_clear(pii), e.id])
                scopes = None if e.scopes is None else _j(e.scopes)
                metadata = None if e.metadata is None else _j(e.metadata)
                await conn.execute(
                    self._update, [e.username_hash, scopes, metadata, v, e.updated_at, e.id]
                )
            case UserBlocked() | UserUnblocked() as e:
                await conn.execute(
                    self._status,
                    [e.status, e.status_at, e.status_reason, e.status_by, v, e.status_at, e.id],
                )
            case UserDeleted() as e:
                await conn.execute(
                    self._delete, [e.deleted_at, e.deleted_at, v, e.deleted_at, e.id]
                )

    async def _open(
        self, conn: psycopg.AsyncConnection[Any], user_id: str, sealed: str
    ) -> Pii | None:
        dek = await self.vault.key_for(conn, user_id)
        return None if dek is None else self.vault.open(dek, user_id, sealed)

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)


def _clear(pii: Pii | None) -> tuple[str | None, str, str, str]:
    """username, profile, custom_fields and addresses as written to the view (nothing without
    the key)."""
    if pii is None:
        return None, "{}", "{}", "[]"
    return pii.username, _j(pii.profile), _j(pii.custom_fields), _j(pii.addresses)
