"""The write path of users (core-api.md 3.9). PII is sealed here, under a fresh per-user data key,
before anything reaches the decider or the store (DESIGN.md 7); deleting a user destroys that key
and releases its username in the same transaction as `user.deleted`. The keys live in the
region's PII key store (`authpi.crypto.pii`). `Users.register` is the directory's side of signup
(`authpi.contracts.directory.UserRegistry`), called by the token service's login portal."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import psycopg

from authpi.contracts.base import Actor, Meta
from authpi.crypto.pii import Pii, PiiVault, region_store
from authpi.directory.domain import user
from authpi.directory.domain.commands.user import CreateUser, DeleteUser, SsoLink, UpdateUser
from authpi.directory.queries.users import IssuerCheck, UserQueries, UserRow
from authpi.errors import AccessDenied, Conflict, FieldProblem, NotFound, Unprocessable
from authpi.eventstore.reads import reading
from authpi.eventstore.store import EventStore, Reaction, Step, Tx
from authpi.web.etag import etag_of
from authpi.web.metadata import check_metadata, merge_metadata
from authpi.web.runtime import Runtime
from authpi.web.text import check_storable

USERNAME_SCOPE = "username"
USERNAME_TYPES = ("email", "unique-name", "phone")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
MAX_USERNAME = 320


def _unprocessable(field: str, code: str, message: str) -> Unprocessable:
    problem = FieldProblem(field=field, code=code, message=message)
    return Unprocessable(message, reason=f"user.{field}", fields=[problem])


def normalized_username(kind: str, username: str) -> str:
    """A username as stored and hashed: trimmed; emails lower-cased, phones E.164."""
    username = username.strip()
    if not username:
        raise _unprocessable("username", "required", "username is required")
    if len(username) > MAX_USERNAME:
        raise _unprocessable("username", "too_long", "username is too long")
    if kind == "email":
        if not _EMAIL.match(username):
            raise _unprocessable("username", "invalid_value", "username must be an email address")
        return username.lower()
    if kind == "phone" and not _PHONE.match(username):
        raise _unprocessable("username", "invalid_value", "username must be an E.164 phone number")
    return username


def username_key(issuer_id: str, username_hash: str) -> str:
    """The reservation key of a username in its issuer (one live user holds it)."""
    return f"{issuer_id}:{username_hash}"


@contextmanager
def taken_username() -> Iterator[None]:
    """A username already claimed in the issuer becomes the Conflict its callers expect."""
    try:
        yield
    except Conflict as exc:
        if exc.reason != f"reservation.{USERNAME_SCOPE}":
            raise
        raise Conflict(
            "a user with this username already exists in the issuer", reason="user.username"
        ) from None


class NewUser(msgspec.Struct, frozen=True, kw_only=True):
    username_type: str
    username: str
    profile: dict[str, Any] = {}
    custom_fields: dict[str, Any] = {}
    scopes: list[str] = []
    metadata: dict[str, Any] = {}


class UserChanges(msgspec.Struct, frozen=True, kw_only=True):
    """A PATCH: UNSET keeps a field; objects follow the merge rule of core-api.md 2.6."""

    profile: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET
    custom_fields: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET
    metadata: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET
    scopes: list[str] | msgspec.UnsetType = msgspec.UNSET
    status: str | None = None
    status_reason: str | None = None
    status_by: str | None = None


class Users:
    def __init__(self, rt: Runtime, store: EventStore) -> None:
        self.rt = rt
        self.store = store
        schema = store.schema
        # The keys live in the region's PII key store, shared with the token service (which
        # only reads them); this directory writes users of its own region.
        self.vault = PiiVault(rt.kek, region_store(rt.namespace, rt.settings.region))
        self.queries = UserQueries(schema, self.vault.schema)
        self.issuers = IssuerCheck(schema)

    def _meta(self, account_id: str, issuer_id: str, actor: Actor, trigger: str = "api") -> Meta:
        return Meta(
            account_id=account_id, issuer_id=issuer_id, actor=actor, trigger=trigger,
            region=self.rt.settings.region,
        )  # fmt: skip

    async def require_issuer(
        self, account_id: str, issuer_id: str, conn: psycopg.AsyncConnection[Any] | None = None
    ) -> None:
        """NotFound unless the account has the issuer; on `conn` when the caller holds one."""
        found = await (
            self.issuers.exists(self.rt.pool, account_id, issuer_id)
            if conn is None
            else self.issuers.exists_on(conn, account_id, issuer_id)
        )
        if not found:
            raise NotFound("no such issuer", reason="issuer.not_found")

    async def get(self, account_id: str, issuer_id: str, user_id: str) -> UserRow:
        # Both reads on one connection, in autocommit: the hot path of GET .../users/{id}.
        async with reading(self.rt.pool) as conn:
            await self.require_issuer(account_id, issuer_id, conn)
            row = await self.queries.user(conn, user_id, self.vault)
        if row is None or (row.account_id, row.issuer_id) != (account_id, issuer_id):
            raise NotFound("no such user", reason="user.not_found")
        if row.status == "deleted":
            raise NotFound("the user was deleted", reason="user.deleted")
        return row

    async def _row(self, user_id: str) -> UserRow | None:
        async with self.rt.pool.connection() as conn:
            return await self.queries.user(conn, user_id, self.vault)

    async def create(self, account_id: str, issuer_id: str, new: NewUser, actor: Actor) -> UserRow:
        user_id = await self._create(
            account_id, issuer_id, new, self._meta(account_id, issuer_id, actor)
        )
        return await self.get(account_id, issuer_id, user_id)

    async def register(
        self,
        *,
        account_id: str,
        issuer_id: str,
        username_type: str,
        username: str,
        profile: dict[str, Any],
        method: str = "signup",
    ) -> str:
        """Signup through the issuer's login portal (UserRegistry): a user with no scopes,
        `user.created` with `method`, triggered by the IdP runtime. An issuer whose signup mode
        is `approval` holds it: the user starts `pending_approval` (core-api.md 3.10). One whose
        mode is `invite_only` or `closed` takes no such signup: an invited address signs up
        through its invitation (`Invitations.register_invited`)."""
        new = self.registration(username_type, username, profile)
        mode = await self.signup_mode(account_id, issuer_id)
        if method == "signup" and mode in ("invite_only", "closed"):
            raise AccessDenied(
                "the issuer takes no sign-ups without an invitation", reason=f"signup.{mode}"
            )
        held = method == "signup" and mode == "approval"
        meta = self._meta(account_id, issuer_id, Actor(type="user"), trigger="idp")
        return await self._create(account_id, issuer_id, new, meta, method=method, held=held)

    def registration(self, username_type: str, username: str, profile: dict[str, Any]) -> NewUser:
        """A signup's new user, its input checked as the Core API checks a created user's."""
        if username_type not in USERNAME_TYPES:
            raise _unprocessable("username_type", "invalid_value", "unknown username type")
        check_storable({"username": username, "profile": profile})
        check_metadata(profile, "profile")
        return NewUser(
            username_type=username_type,
            username=normalized_username(username_type, username),
            profile=profile,
        )

    async def signup_mode(self, account_id: str, issuer_id: str) -> str:
        """The issuer's signup mode (settings.access.mode); 404 for an issuer the account lacks."""
        mode = await self.issuers.signup_mode(self.rt.pool, account_id, issuer_id)
        if mode is None:
            raise NotFound("no such issuer", reason="issuer.not_found")
        return mode

    def creation(
        self,
        issuer_id: str,
        new: NewUser,
        method: str = "api",
        held: bool = False,
        sso: SsoLink | None = None,
    ) -> tuple[Step[Any, Any], Reaction]:
        """The step that creates a user and the reaction that claims its username and stores
        its data key in the same transaction (with other steps, e.g. an invitation's answer or
        an SSO sign-in's membership)."""
        user_id = self.rt.ids.new("usr")
        dek = self.vault.new_key()
        pii = Pii(username=new.username, profile=new.profile, custom_fields=new.custom_fields)
        username_hash = self.vault.username_hash(issuer_id, new.username)
        cmd = CreateUser(
            user_id=user_id,
            issuer_id=issuer_id,
            username_hash=username_hash,
            username_type=new.username_type,
            pii=self.vault.seal(dek, user_id, pii),
            scopes=new.scopes,
            metadata=new.metadata,
            now=self.rt.clock.now_ms(),
            method=method,
            region=self.rt.settings.region,
            held=held,
            sso=sso,
        )

        async def claim(tx: Tx) -> None:
            await tx.reserve(USERNAME_SCOPE, username_key(issuer_id, username_hash), user_id)
            await self.vault.store(tx.conn, user_id, dek)

        return Step(user_id, user, cmd), claim

    async def _create(
        self,
        account_id: str,
        issuer_id: str,
        new: NewUser,
        meta: Meta,
        method: str = "api",
        held: bool = False,
    ) -> str:
        await self.require_issuer(account_id, issuer_id)
        step, claim = self.creation(issuer_id, new, method=method, held=held)
        with taken_username():
            await self.store.execute_all([step], meta, [claim])
        return step.stream_id

    async def update(
        self,
        account_id: str,
        issuer_id: str,
        user_id: str,
        changes: UserChanges,
        actor: Actor,
        if_match: str | None = None,
    ) -> UserRow:
        """Prepare the change from the current version and apply it; when another write lands
        in between (and no If-Match pinned the version), prepare it again."""
        for _ in range(3):
            row = await self.get(account_id, issuer_id, user_id)
            cmd = await self._update_command(row, changes, if_match)
            try:
                await self.store.execute(
                    user_id,
                    user,
                    cmd,
                    self._meta(account_id, issuer_id, actor),
                )
            except user.Stale:
                continue
            return await self.get(account_id, issuer_id, user_id)
        raise Conflict("the user was changed concurrently; retry", reason="user.contended")

    async def _update_command(
        self, row: UserRow, changes: UserChanges, if_match: str | None
    ) -> UpdateUser:
        old = Pii(
            username=row.username or "",
            profile=row.profile,
            custom_fields=row.custom_fields,
            addresses=row.addresses,
        )
        new = msgspec.structs.replace(
            old,
            profile=merge_metadata(old.profile, changes.profile),
            custom_fields=merge_metadata(old.custom_fields, changes.custom_fields),
        )
        pii_changed = [
            f for f in ("profile", "custom_fields") if getattr(old, f) != getattr(new, f)
        ]
        sealed = None
        if pii_changed:
            async with self.rt.pool.connection() as conn:
                dek = await self.vault.key_for(conn, row.id)
            if dek is None:
                raise NotFound("the user was deleted", reason="user.deleted")
            sealed = self.vault.seal(dek, row.id, new)
        return UpdateUser(
            user_id=row.id,
            issuer_id=row.issuer_id,
            now=self.rt.clock.now_ms(),
            based_on=etag_of(row.created_at, row.updated_at),
            pii=sealed,
            pii_changed=pii_changed,
            scopes=None if changes.scopes is msgspec.UNSET else changes.scopes,
            metadata=None
            if changes.metadata is msgspec.UNSET
            else merge_metadata(row.metadata, changes.metadata),
            status=changes.status,
            status_reason=changes.status_reason,
            status_by=changes.status_by,
            if_match=if_match,
        )

    async def delete(
        self, account_id: str, issuer_id: str, user_id: str, actor: Actor, if_match: str | None
    ) -> None:
        """Soft delete; the data key goes in the same transaction, so the user's PII becomes
        unreadable in every event at once, and the view drops its clear copy."""
        await self.require_issuer(account_id, issuer_id)
        row = await self._row(user_id)
        if row is None or (row.account_id, row.issuer_id) != (account_id, issuer_id):
            raise NotFound("no such user", reason="user.not_found")
        cmd = DeleteUser(
            user_id=user_id, issuer_id=issuer_id, now=self.rt.clock.now_ms(), if_match=if_match
        )

        async def shred(tx: Tx) -> None:
            await self.vault.shred(tx.conn, user_id)
            await tx.release(USERNAME_SCOPE, username_key(issuer_id, row.username_hash), user_id)

        await self.store.execute(
            user_id,
            user,
            cmd,
            self._meta(account_id, issuer_id, actor),
            [shred],
        )
        await self.vault.vacuum(self.rt.pool)
