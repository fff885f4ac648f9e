"""The regional PII key store: per-subject data keys for PII (DESIGN.md 7). A user's PII is sealed
with its own AES-GCM key, wrapped by the KEK; deleting the key row makes every copy of that PII
unreadable at once. An organization invitation is a subject too: the invited address, the
inviter and the message are sealed under the invitation's own key (`InvitationPii`).

Where the keys live. The keys are shared infrastructure of a region, not any one service's data:
table `pii_keys` in the region store, schema `<namespace>_pii` for the region `default`
(`<namespace>_pii_<region>` for any other region code; `region_store`). Its migrations run
before every service's (`MIGRATIONS`, applied by the host). The directory creates a user's key
when it creates the user and destroys it when it deletes the user (an invitation's: when it
creates the invitation, and when the invitation is revoked or declined, its organization deleted
or the user who accepted it deleted); the token service only reads keys, to open the sealed
snapshots it projects from `user.*` and `organization.invitation.*` events (ID-token and
userinfo claims, the invitation page). Every reader reaches a key through
`region_store(namespace, region)`, the region of the user or of the event's metadata.

Every copy at rest is sealed: the events, the directory's users_view and the token service's
users_view (each keeps the event's sealed snapshot and decrypts on read) and the gateway's
idempotency replays (under a per-user replay key the gateway destroys on `user.deleted`).
Nothing stores, publishes or logs a clear value.

Residual risk, stated plainly: deleting a key row leaves a dead tuple holding the wrapped key,
and the INSERT that created it is in the WAL. PostgreSQL has no secure erase: VACUUM (run after
every shredding, `vacuum`) only makes the space reusable, so the bytes stay on disk until
overwritten, and they stay in WAL archives, replicas and backups taken before the deletion.
Whoever holds such a copy AND the KEK can unwrap the deleted key and read the user's PII again.
The shredding is therefore final against anyone without the KEK (keep it apart from the data
folder and its backups), and becomes final against old copies too once the KEK version that
wrapped the key is rotated out and destroyed."""

from __future__ import annotations

import hashlib
import hmac
from importlib import resources
from pathlib import Path
from typing import Any, LiteralString

import msgspec
import psycopg

from authpi.crypto.envelope import Kek, new_key, seal, unseal
from authpi.eventstore.sqltext import render

DEFAULT_REGION = "default"
# The region store's own forward-only migrations (its `pii_keys` table), run before the services'.
MIGRATIONS = Path(str(resources.files("authpi.crypto") / "pii_migrations"))


def region_store(namespace: str, region: str = DEFAULT_REGION) -> str:
    """The schema of a region's PII key store: the per-region lookup every reader goes through."""
    if region == DEFAULT_REGION:
        return f"{namespace}_pii"
    if not region.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"not a region code: {region!r}")
    return f"{namespace}_pii_{region}"


def key_context(subject_id: str) -> str:
    """What a subject's data key is wrapped with (KEK rotation re-wraps with the same)."""
    return f"pii:{subject_id}"


def username_hash(kek: Kek, issuer_id: str, username: str) -> str:
    """The lookup key of a username: HMAC-SHA256 under the issuer's pepper, derived from the KEK;
    case and surrounding blanks do not count. The directory and the token service use this one."""
    pepper = kek.derive(f"username-pepper:{issuer_id}")
    return hmac.new(pepper, username.strip().lower().encode(), hashlib.sha256).hexdigest()


class Pii(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    username: str
    profile: dict[str, Any] = {}
    custom_fields: dict[str, Any] = {}
    addresses: list[dict[str, Any]] = []


class InvitationPii(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What an organization invitation says about people (core-api.md 3.15): the invited
    address (lower-cased), who invited (`{id?, name?}`) and the message to the invitee."""

    email_invited: str
    inviter: dict[str, Any] | None = None
    message: str | None = None


_pii_decoder = msgspec.json.Decoder(Pii)
_invitation_decoder = msgspec.json.Decoder(InvitationPii)


class PiiVault:
    """One region store's keys. `schema` is the store's schema (`region_store`)."""

    def __init__(self, kek: Kek, schema: str) -> None:
        self.kek = kek
        self.schema = schema
        self._insert: LiteralString = render(
            "INSERT INTO {schema}.pii_keys (subject_id, wrapped_key) VALUES (%s, %s)", schema=schema
        )
        self._select: LiteralString = render(
            "SELECT wrapped_key FROM {schema}.pii_keys WHERE subject_id = %s", schema=schema
        )
        self._delete: LiteralString = render(
            "DELETE FROM {schema}.pii_keys WHERE subject_id = %s", schema=schema
        )
        self._vacuum: LiteralString = render("VACUUM {schema}.pii_keys", schema=schema)

    def username_hash(self, issuer_id: str, username: str) -> str:
        return username_hash(self.kek, issuer_id, username)

    @staticmethod
    def new_key() -> bytes:
        return new_key()

    async def store(self, conn: psycopg.AsyncConnection[Any], subject_id: str, dek: bytes) -> None:
        await conn.execute(self._insert, [subject_id, self.kek.wrap(dek, key_context(subject_id))])

    async def key_or_new(self, conn: psycopg.AsyncConnection[Any], subject_id: str) -> bytes:
        """The subject's key, stored first when it has none (sealing data written before it had
        one: run under a lock that keeps a second writer of the same subject out)."""
        dek = await self.key_for(conn, subject_id)
        if dek is None:
            dek = self.new_key()
            await self.store(conn, subject_id, dek)
        return dek

    async def key_for(self, conn: psycopg.AsyncConnection[Any], subject_id: str) -> bytes | None:
        cur = await conn.execute(self._select, [subject_id])
        row = await cur.fetchone()
        return None if row is None else self.kek.unwrap(row[0], key_context(subject_id))

    async def shred(self, conn: psycopg.AsyncConnection[Any], subject_id: str) -> None:
        await conn.execute(self._delete, [subject_id])

    async def vacuum(self, pool: Any) -> None:
        """After a shredding commits: reclaim the dead tuple of the deleted key so that new keys
        overwrite it soon, instead of waiting for autovacuum (see the module docstring for what
        this cannot do). VACUUM cannot run in a transaction, hence autocommit. A role that does
        not own the table gets a warning from PostgreSQL, not an error."""
        async with pool.connection() as conn:
            await conn.set_autocommit(True)
            try:
                await conn.execute(self._vacuum)
            finally:
                await conn.set_autocommit(False)

    @staticmethod
    def seal(dek: bytes, subject_id: str, pii: Pii | InvitationPii) -> str:
        return seal(dek, msgspec.json.encode(pii), subject_id.encode())

    @staticmethod
    def open(dek: bytes, subject_id: str, token: str) -> Pii:
        return _pii_decoder.decode(unseal(dek, token, subject_id.encode()))

    @staticmethod
    def open_invitation(dek: bytes, invitation_id: str, token: str) -> InvitationPii:
        return _invitation_decoder.decode(unseal(dek, token, invitation_id.encode()))

    def open_invitation_wrapped(
        self, wrapped_key: str | None, invitation_id: str, token: str | None
    ) -> InvitationPii | None:
        """An invitation's sealed snapshot, given its wrapped key as read in the same query;
        None once the key is shredded (or nothing was sealed)."""
        if wrapped_key is None or token is None:
            return None
        dek = self.kek.unwrap(wrapped_key, key_context(invitation_id))
        return self.open_invitation(dek, invitation_id, token)

    async def open_invitation_stored(
        self, conn: psycopg.AsyncConnection[Any], invitation_id: str, token: str | None
    ) -> InvitationPii | None:
        """`open_invitation` with the key read from this store."""
        if token is None:
            return None
        dek = await self.key_for(conn, invitation_id)
        return None if dek is None else self.open_invitation(dek, invitation_id, token)

    def open_wrapped(
        self, wrapped_key: str | None, subject_id: str, token: str | None
    ) -> Pii | None:
        """The PII of a stored row, given its subject's wrapped key as read in the same query;
        None once the key is shredded."""
        if wrapped_key is None or token is None:
            return None
        return self.open(self.kek.unwrap(wrapped_key, key_context(subject_id)), subject_id, token)

    async def open_stored(
        self, conn: psycopg.AsyncConnection[Any], subject_id: str, token: str | None
    ) -> Pii | None:
        """The PII sealed in `token`, opened with the subject's key from this store; None when
        there is no snapshot or the key is shredded (the subject was deleted)."""
        if token is None:
            return None
        dek = await self.key_for(conn, subject_id)
        return None if dek is None else self.open(dek, subject_id, token)
