"""Per-user data keys for PII (DESIGN.md 7). A user's PII is sealed with its own AES-GCM key,
wrapped by the KEK; deleting the key row makes every copy of that PII unreadable at once."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import msgspec
import psycopg
from psycopg import sql

from authpi.crypto.envelope import Kek, new_key, seal, unseal


class Pii(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    username: str
    profile: dict[str, Any] = {}
    custom_fields: dict[str, Any] = {}
    addresses: list[dict[str, Any]] = []


_pii_decoder = msgspec.json.Decoder(Pii)


class PiiVault:
    def __init__(self, kek: Kek, schema: str) -> None:
        self.kek = kek
        q = sql.Identifier(schema)
        self._insert = (
            sql.SQL("INSERT INTO {}.pii_keys (subject_id, wrapped_key) VALUES (%s, %s)")
            .format(q)
            .as_string()
        )
        self._select = sql.SQL("SELECT wrapped_key FROM {}.pii_keys WHERE subject_id = %s").format(
            q
        )
        self._delete = (
            sql.SQL("DELETE FROM {}.pii_keys WHERE subject_id = %s").format(q).as_string()
        )

    def username_hash(self, issuer_id: str, username: str) -> str:
        pepper = self.kek.derive(f"username-pepper:{issuer_id}")
        return hmac.new(pepper, username.strip().lower().encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def new_key() -> bytes:
        return new_key()

    async def store(self, conn: psycopg.AsyncConnection[Any], subject_id: str, dek: bytes) -> None:
        await conn.execute(self._insert, [subject_id, self.kek.wrap(dek, f"pii:{subject_id}")])

    async def key_for(self, conn: psycopg.AsyncConnection[Any], subject_id: str) -> bytes | None:
        cur = await conn.execute(self._select, [subject_id])
        row = await cur.fetchone()
        return None if row is None else self.kek.unwrap(row[0], f"pii:{subject_id}")

    async def shred(self, conn: psycopg.AsyncConnection[Any], subject_id: str) -> None:
        await conn.execute(self._delete, [subject_id])

    @staticmethod
    def seal(dek: bytes, subject_id: str, pii: Pii) -> str:
        return seal(dek, msgspec.json.encode(pii), subject_id.encode())

    @staticmethod
    def open(dek: bytes, subject_id: str, token: str) -> Pii:
        return _pii_decoder.decode(unseal(dek, token, subject_id.encode()))
