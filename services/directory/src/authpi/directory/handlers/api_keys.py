"""The write path of API keys (core-api.md 3.4): create, block, unblock, revoke, rotate, update
and delete, each on the key's own stream. A secret is 32 random characters, returned once and
stored as a SHA-256 digest."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.contracts.base import Actor, Meta
from authpi.contracts.console import PLATFORM_ISSUER_ID
from authpi.crypto.ids import sha256_hex
from authpi.directory.domain import api_key
from authpi.directory.domain.commands.api_key import (
    BlockApiKey,
    CreateApiKey,
    DeleteApiKey,
    RevokeApiKey,
    RotateApiKey,
    UnblockApiKey,
    UpdateApiKey,
)
from authpi.directory.queries.lookups import Queries
from authpi.errors import NotFound
from authpi.eventstore.store import EventStore, Step
from authpi.web.runtime import Runtime


class NewApiKey(msgspec.Struct, frozen=True):
    key_id: str
    secret: str


class KeyRestrictions(msgspec.Struct, frozen=True, kw_only=True):
    ip_allowlist: tuple[str, ...] = ()
    expires_at: int | None = None


class KeyDetails(msgspec.Struct, frozen=True, kw_only=True):
    """The descriptive part of a new key, and an optional caller-supplied secret (migrations)."""

    description: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = {}
    secret: str | None = None
    secret_hint: str | None = None


class StatusChange(msgspec.Struct, frozen=True, kw_only=True):
    """The optional part of a status action (core-api.md 2.9) and its If-Match precondition."""

    status_reason: str | None = None
    status_by: str | None = None
    if_match: str | None = None


class ApiKeys:
    def __init__(self, rt: Runtime, store: EventStore) -> None:
        self.rt = rt
        self.store = store
        self.queries = Queries(store.schema)

    def _meta(self, account_id: str, actor: Actor | None = None, trigger: str = "api") -> Meta:
        return Meta(
            account_id=account_id,
            actor=actor or Actor(type="system"),
            trigger=trigger,
            region=self.rt.settings.region,
        )

    def new_secret(self) -> str:
        return self.rt.ids.secret(32)

    def api_key_step(
        self,
        account_id: str,
        org_id: str,
        name: str,
        scopes: list[str],
        restrictions: KeyRestrictions | None = None,
        details: KeyDetails | None = None,
    ) -> tuple[Step[CreateApiKey, api_key.ApiKey], NewApiKey]:
        key_id = self.rt.ids.new("key")
        about = details or KeyDetails()
        secret = about.secret or self.new_secret()
        limits = restrictions or KeyRestrictions()
        cmd = CreateApiKey(
            key_id=key_id,
            account_id=account_id,
            org_id=org_id,
            issuer_id=PLATFORM_ISSUER_ID,
            name=name,
            description=about.description,
            tags=list(about.tags),
            metadata=about.metadata,
            secret_sha256=sha256_hex(secret),
            secret_hint=about.secret_hint or secret[-8:],
            scopes=scopes,
            ip_allowlist=list(limits.ip_allowlist),
            expires_at=limits.expires_at,
            now=self.rt.clock.now_ms(),
        )
        return Step(key_id, api_key, cmd), NewApiKey(key_id, secret)

    async def create_api_key(
        self,
        account_id: str,
        name: str,
        scopes: list[str],
        *,
        actor: Actor,
        restrictions: KeyRestrictions | None = None,
        details: KeyDetails | None = None,
    ) -> NewApiKey:
        """An account-level key (of the account's backing organization). Scopes, restrictions
        and details arrive validated by the caller."""
        async with self.rt.pool.connection() as conn:
            org_id = await self.queries.account_org(conn, account_id)
        if org_id is None:
            raise NotFound("no such account", reason="account.not_found")
        step, key = self.api_key_step(account_id, org_id, name, scopes, restrictions, details)
        await self.store.execute_all([step], self._meta(account_id, actor))
        return key

    async def block_api_key(
        self, account_id: str, key_id: str, *, actor: Actor, change: StatusChange | None = None,
        held: frozenset[str] | None = None,
    ) -> api_key.ApiKey:  # fmt: skip
        return await self._status_change(BlockApiKey, account_id, key_id, actor, change, held)

    async def unblock_api_key(
        self, account_id: str, key_id: str, *, actor: Actor, if_match: str | None = None,
        held: frozenset[str] | None = None,
    ) -> api_key.ApiKey:  # fmt: skip
        cmd = UnblockApiKey(
            key_id=key_id, account_id=account_id, now=self.rt.clock.now_ms(), if_match=if_match,
            held=held,
        )  # fmt: skip
        return await self._api_key_action(cmd, actor)

    async def revoke_api_key(
        self, account_id: str, key_id: str, *, actor: Actor, change: StatusChange | None = None,
        held: frozenset[str] | None = None,
    ) -> api_key.ApiKey:  # fmt: skip
        return await self._status_change(RevokeApiKey, account_id, key_id, actor, change, held)

    async def _status_change(
        self, kind: type[BlockApiKey] | type[RevokeApiKey], account_id: str, key_id: str,
        actor: Actor, change: StatusChange | None, held: frozenset[str] | None,
    ) -> api_key.ApiKey:  # fmt: skip
        c = change or StatusChange()
        cmd = kind(
            key_id=key_id, account_id=account_id, now=self.rt.clock.now_ms(),
            status_reason=c.status_reason, status_by=c.status_by, if_match=c.if_match, held=held,
        )  # fmt: skip
        return await self._api_key_action(cmd, actor)

    async def rotate_api_key(
        self, account_id: str, key_id: str, *, actor: Actor, if_match: str | None = None,
        held: frozenset[str] | None = None,
    ) -> NewApiKey:  # fmt: skip
        """A new secret; the previous one keeps working for 15 minutes (core-api.md 3.4)."""
        secret = self.new_secret()
        cmd = RotateApiKey(
            key_id=key_id,
            account_id=account_id,
            secret_sha256=sha256_hex(secret),
            secret_hint=secret[-8:],
            now=self.rt.clock.now_ms(),
            if_match=if_match,
            held=held,
        )
        await self._api_key_action(cmd, actor)
        return NewApiKey(key_id, secret)

    async def update_api_key(self, cmd: UpdateApiKey, actor: Actor) -> api_key.ApiKey:
        """PATCH of a key; the command's `now` is replaced by the clock's."""
        now = self.rt.clock.now_ms()
        return await self._api_key_action(msgspec.structs.replace(cmd, now=now), actor)

    async def delete_api_key(
        self, account_id: str, key_id: str, *, actor: Actor, if_match: str | None = None,
        held: frozenset[str] | None = None,
    ) -> None:  # fmt: skip
        cmd = DeleteApiKey(
            key_id=key_id, account_id=account_id, now=self.rt.clock.now_ms(), if_match=if_match,
            held=held,
        )  # fmt: skip
        await self._api_key_action(cmd, actor)

    async def _api_key_action(self, cmd: api_key.ApiKeyCommand, actor: Actor) -> api_key.ApiKey:
        outcome = await self.store.execute(
            cmd.key_id, api_key, cmd, self._meta(cmd.account_id, actor)
        )
        return outcome.state
