"""How the idempotency store seals the response bodies it keeps (core-api.md 2.4, DESIGN.md 7).

A replay about a user (a user create or update holds the user's email and profile) is sealed
under that user's own replay key: AES-GCM, wrapped by the KEK in `replay_keys`. The gateway
cannot read the directory's per-user data keys (it never reads another service's tables), so it
keeps its own, and `gateway-directory` destroys it on `user.deleted` together with the records;
from then on every copy of those bodies (dead tuples, WAL, backups) is ciphertext without a key.
A replay about an organization invitation (it holds the invited address, the inviter and the
message) has a replay key of the invitation's own, destroyed when the invitation is revoked or
declined.
Any other body (it may hold a one-time secret) is sealed under a gateway key derived from the KEK.
The residual risk of a deleted key row is the one `authpi.directory.pii` describes."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from authpi.crypto.envelope import Kek, new_key, seal, unseal

USER_PREFIX = "usr_"
# Resources whose replays hold personal data, each sealed under a replay key of its own.
SUBJECT_PREFIXES = (USER_PREFIX, "inv_")
_USER_SEALED = "u."  # tokens are base64url, so this prefix cannot start a gateway-key token


class ReplaySeal:
    def __init__(self, schema: str, kek: Kek) -> None:
        self._kek = kek
        self._key = kek.derive("authpi.gateway.idempotency")
        q = sql.Identifier(schema)
        # A user already deleted (as far as this gateway knows) gets no key, so no body.
        self._create = sql.SQL(
            "INSERT INTO {0}.replay_keys (resource_id, wrapped_key) SELECT %(id)s, %(wrapped)s"
            " WHERE NOT EXISTS (SELECT 1 FROM {0}.inactive_users_view"
            " WHERE id = %(id)s AND status = 'deleted')"
            " ON CONFLICT (resource_id) DO NOTHING RETURNING wrapped_key"
        ).format(q)
        self._read = sql.SQL(
            "SELECT wrapped_key FROM {}.replay_keys WHERE resource_id = %s"
        ).format(q)

    async def seal(
        self, conn: psycopg.AsyncConnection[Any], body: bytes, aad: bytes, resource_id: str | None
    ) -> str | None:
        """The stored form of `body`; None when there is nothing to keep (empty body, or a
        user deleted before its replay was stored)."""
        if not body:
            return None
        if resource_id is None or not resource_id.startswith(SUBJECT_PREFIXES):
            return seal(self._key, body, aad)
        dek = await self._subject_key(conn, resource_id)
        return None if dek is None else _USER_SEALED + seal(dek, body, aad)

    async def unseal(
        self,
        conn: psycopg.AsyncConnection[Any],
        token: str | None,
        aad: bytes,
        resource_id: str | None,
    ) -> bytes:
        """The clear body; empty when none was kept or its user's key is gone."""
        if not token:
            return b""
        if not token.startswith(_USER_SEALED):
            return unseal(self._key, token, aad)
        wrapped = await self._wrapped(conn, resource_id) if resource_id else None
        if wrapped is None:
            return b""
        dek = self._kek.unwrap(wrapped, _context(resource_id or ""))
        return unseal(dek, token.removeprefix(_USER_SEALED), aad)

    async def _subject_key(
        self, conn: psycopg.AsyncConnection[Any], subject_id: str
    ) -> bytes | None:
        fresh = new_key()
        params = {"id": subject_id, "wrapped": self._kek.wrap(fresh, _context(subject_id))}
        cur = await conn.execute(self._create, params)
        if await cur.fetchone() is not None:
            return fresh
        wrapped = await self._wrapped(conn, subject_id)
        return None if wrapped is None else self._kek.unwrap(wrapped, _context(subject_id))

    async def _wrapped(self, conn: psycopg.AsyncConnection[Any], resource_id: str) -> str | None:
        cur = await conn.execute(self._read, [resource_id])
        row = await cur.fetchone()
        return None if row is None else str(row[0])


def _context(subject_id: str) -> str:
    return f"replay:{subject_id}"
