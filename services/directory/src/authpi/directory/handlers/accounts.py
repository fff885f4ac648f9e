"""The write path of accounts (core-api.md 3.2) and of the deployment's bootstrap. Account
domains have their own module (account_domains.py) and write through this handler's store and
reactions: the claim on a domain host is taken and released in the transaction that adds or
removes it."""

from __future__ import annotations

import msgspec

from authpi.contracts.base import Actor
from authpi.contracts.console import PLATFORM_ISSUER_ID
from authpi.contracts.directory import AccountDomainAdded, AccountDomainRemoved
from authpi.contracts.scopes import ALL_SCOPES
from authpi.crypto.pii import Pii, PiiVault, region_store
from authpi.directory.domain import account, user
from authpi.directory.domain.commands.account import CreateAccount, UpdateAccount
from authpi.directory.domain.commands.user import CreateUser
from authpi.directory.handlers.api_keys import ApiKeys
from authpi.directory.queries.accounts import AccountQueries
from authpi.errors import Conflict, FieldProblem, Unprocessable
from authpi.eventstore.store import EventStore, Reaction, Step, Tx
from authpi.web.runtime import Runtime

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


class Bootstrapped(msgspec.Struct, frozen=True):
    account_id: str
    api_key_id: str
    api_key_secret: str
    created_account: bool


class Directory(ApiKeys):
    """Accounts and the bootstrap. It carries the API-key commands too (ApiKeys): account-level
    keys are the account's credentials, and callers reach both through the `directory` export."""

    def __init__(self, rt: Runtime, store: EventStore) -> None:
        super().__init__(rt, store)
        self.vault = PiiVault(rt.kek, region_store(rt.namespace, rt.settings.region))
        self.account_queries = AccountQueries(store.schema)
        # Every write to an account stream: the claims on domain hosts.
        self.projections: list[Reaction] = [claim_domains]

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
        key_step, key = self.api_key_step(account_id, org_id, "bootstrap", list(ALL_SCOPES))
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
