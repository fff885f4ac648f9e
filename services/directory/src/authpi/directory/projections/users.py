"""users_view: inline projection of User events. It decrypts PII with the user's data key while
the key exists; after deletion (key shredded) it keeps no clear value."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
from psycopg import sql

from authpi.contracts.directory import UserCreated, UserDeleted
from authpi.directory.pii import PiiVault
from authpi.eventstore.store import StoredEvent


class UsersView:
    name = "directory-users"
    event_types = ("user.created", "user.deleted")

    def __init__(self, schema: str, vault: PiiVault) -> None:
        self.schema = schema
        self.vault = vault
        q = sql.Identifier(schema)
        self._insert = (
            sql.SQL(
                "INSERT INTO {}.users_view (id, account_id, issuer_id, username_hash, status,"
                " region, store_id, username, profile, version, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)"
                " ON CONFLICT (id) DO NOTHING"
            )
            .format(q)
            .as_string()
        )
        self._delete = sql.SQL("DELETE FROM {}.users_view WHERE id = %s").format(q).as_string()
        self._reset = sql.SQL("TRUNCATE {}.users_view").format(q).as_string()

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case UserCreated() as e:
                dek = await self.vault.key_for(conn, e.id)
                pii = None if dek is None else self.vault.open(dek, e.id, e.pii)
                await conn.execute(
                    self._insert,
                    [e.id, stored.meta.account_id, e.issuer_id, e.username_hash, e.status, e.region,
                     e.store_id, pii.username if pii else None,
                     msgspec.json.encode(pii.profile if pii else {}).decode(),
                     stored.stream_version, e.created_at],
                )  # fmt: skip
            case UserDeleted() as e:
                await conn.execute(self._delete, [e.id])

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)
