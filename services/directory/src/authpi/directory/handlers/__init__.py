"""The directory's write path: commands to streams, through the event store. Accounts, API keys
and bootstrap live here; other aggregate groups have their own module in this package (account
domains in domains.py, writing through this module's store and account projections)."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.contracts.base import Actor, Meta
from authpi.contracts.directory import AccountDomainAdded, AccountDomainRemoved
from authpi.contracts.scopes import ALL_SCOPES
from authpi.crypto.ids import sha256_hex
from authpi.directory.domain import account, api_key, user
from authpi.directory.domain.account import UpdateAccount
from authpi.directory.domain.api_key_commands import DeleteApiKey, UpdateApiKey
from authpi.directory.domain.commands import (
    BlockApiKey,
    CreateAccount,
    CreateApiKey,
    CreateUser,
    RevokeApiKey,
    RotateApiKey,
    UnblockApiKey,
)
from authpi.directory.pii import Pii, PiiVault
from authpi.directory.projections import inline_views
from authpi.directory.projections.account_domains import AccountDomainsView
from authpi.directory.projections.accounts import AccountsView
from authpi.directory.projections.api_keys import ApiKeysView
from authpi.directory.projections.users import UsersView
from authpi.directory.queries import Queries
from authpi.directory.queries_accounts import AccountQueries
from authpi.errors import Conflict, FieldProblem, NotFound, Unprocessable
from authpi.eventstore.store import EventStore, Reaction, Step, Tx
from authpi.web.runtime import Runtime

# The platform's own issuer: account owners and account-level keys belong to it (core-api.md 3.2).
PLATFORM_ISSUER_ID = "i_authpi0000000000000000000"
# A custom domain belongs to one account at most (core-api.md 3.3: a duplicate in any account is
# a 409); the claim is taken and released in the transaction that adds or removes it.
DOMAIN_SCOPE = "domain"


async def claim_domains(tx: Tx) -> None:
    for stored in tx.events:
        match stored.event:
            case AccountDomainAdded() as e:
                await tx.reserve(DOMAIN_SCOPE, e.host, e.account_id)
            case AccountDomainRemoved() as e:
                await tx.release(DOMAIN_SCOPE, e.host, e.account_id)


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


class Bootstrapped(msgspec.Struct, frozen=True):
    account_id: str
    api_key_id: str
    api_key_secret: str
    created_account: bool


class Directory:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        schema = rt.schema("directory")
        self.store = EventStore(rt.pool, schema, "directory", rt.ids, inline_views(schema))
        self.vault = PiiVault(rt.kek, schema)
        self.queries = Queries(schema)
        self.account_queries = AccountQueries(schema)
        self.accounts_view = AccountsView(schema)
        self.api_keys_view = ApiKeysView(schema)
        self.users_view = UsersView(schema)
        self.account_domains_view = AccountDomainsView(schema)
        # Every write to an account or key stream: the views, and the claims on domain hosts.
        self.projections: list[Reaction] = [claim_domains]

    def new_secret(self) -> str:
        return self.rt.ids.secret(32)

    def _meta(self, account_id: str, actor: Actor | None = None, trigger: str = "api") -> Meta:
        return Meta(
            account_id=account_id,
            actor=actor or Actor(type="system"),
            trigger=trigger,
            region=self.rt.settings.region,
        )

    def _api_key_step(
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
        step, key = self._api_key_step(account_id, org_id, name, scopes, restrictions, details)
        await self.store.execute_all([step], self._meta(account_id, actor), self.projections)
        return key

    async def block_api_key(
        self, account_id: str, key_id: str, *, actor: Actor, change: StatusChange | None = None,
        held: frozenset[str] | None = None,
    ) -> api_key.ApiKey:  # fmt: skip
        c = change or StatusChange()
        cmd = BlockApiKey(
            key_id=key_id, account_id=account_id, now=self.rt.clock.now_ms(),
            status_reason=c.status_reason, status_by=c.status_by, if_match=c.if_match, held=held,
        )  # fmt: skip
        return await self._api_key_action(cmd, actor)

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
        c = change or StatusChange()
        cmd = RevokeApiKey(
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

    async def create_account(self, name: str, *, actor: Actor) -> str:
        """An account with its backing organization and no owner yet (the console's
        registration flow adds the owner; core-api.md 3.2)."""
        account_id = self.rt.ids.new("acc")
        cmd = CreateAccount(
            account_id=account_id,
            org_id="org_" + account_id.removeprefix("acc_"),
            name=name,
            owner_user_id=None,
            now=self.rt.clock.now_ms(),
        )
        meta = self._meta(account_id, actor, trigger="system")
        await self.store.execute(account_id, account, cmd, meta, self.projections)
        return account_id

    async def update_account(self, cmd: UpdateAccount, actor: Actor) -> account.Account:
        """PATCH of an account. A new owner must be a user of this account (422 otherwise)."""
        if isinstance(cmd.owner_user_id, str):
            async with self.rt.pool.connection() as conn:
                known = await self.account_queries.account_user(
                    conn, cmd.account_id, cmd.owner_user_id, PLATFORM_ISSUER_ID
                )
            if not known:
                problem = FieldProblem(
                    field="owner_user_id",
                    code="invalid_value",
                    message="owner_user_id is not a console user of this account",
                )
                raise Unprocessable(
                    problem.message, reason="account.unknown_owner", fields=[problem]
                )
        cmd = msgspec.structs.replace(cmd, now=self.rt.clock.now_ms())
        meta = self._meta(cmd.account_id, actor)
        outcome = await self.store.execute(cmd.account_id, account, cmd, meta, self.projections)
        return outcome.state

    async def _api_key_action(self, cmd: api_key.ApiKeyCommand, actor: Actor) -> api_key.ApiKey:
        outcome = await self.store.execute(
            cmd.key_id, api_key, cmd, self._meta(cmd.account_id, actor), self.projections
        )
        return outcome.state

    async def bootstrap(self, owner_username: str = "owner@authpi.local") -> Bootstrapped | None:
        """Create the deployment's first account, its owner and an all-scopes API key, once.
        None when the deployment already has its account: a second call never mints a key (a
        restarted pod with an empty data folder must not add another all-scopes credential)."""
        if await self.bootstrapped_account() is not None:
            return None
        try:
            return await self._bootstrap_new(owner_username)
        except Conflict:
            if await self.bootstrapped_account() is None:
                raise
            return None  # a concurrent start won the reservation

    async def bootstrapped_account(self) -> str | None:
        """The account the bootstrap reserved, if the deployment has been bootstrapped."""
        async with self.rt.pool.connection() as conn:
            return await self.queries.reservation(conn, "bootstrap", "account")

    async def _bootstrap_new(self, owner_username: str) -> Bootstrapped:
        ids, now = self.rt.ids, self.rt.clock.now_ms()
        account_id = ids.new("acc")
        org_id = "org_" + account_id.removeprefix("acc_")  # shares the suffix (platform.md 1.3)
        user_id = ids.new("usr")
        dek = self.vault.new_key()
        pii = self.vault.seal(dek, user_id, Pii(username=owner_username))
        key_step, key = self._api_key_step(account_id, org_id, "bootstrap", list(ALL_SCOPES))
        steps = [
            Step(account_id, account, CreateAccount(
                account_id=account_id, org_id=org_id, name="Default account",
                owner_user_id=user_id, now=now)),
            Step(user_id, user, CreateUser(
                user_id=user_id, issuer_id=PLATFORM_ISSUER_ID,
                username_hash=self.vault.username_hash(PLATFORM_ISSUER_ID, owner_username),
                pii=pii, now=now, method="api", region=self.rt.settings.region)),
            key_step,
        ]  # fmt: skip

        async def claim(tx: Tx) -> None:
            await tx.reserve("bootstrap", "account", account_id)
            await self.vault.store(tx.conn, user_id, dek)

        reactions: list[Reaction] = [claim, *self.projections]
        await self.store.execute_all(steps, self._meta(account_id, trigger="system"), reactions)
        return Bootstrapped(account_id, key.key_id, key.secret, created_account=True)
