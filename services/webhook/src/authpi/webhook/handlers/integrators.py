"""The write path of integrator credentials (issue 12): issue and revoke, each an event of the
credential's stream (integrator-credential.issued / .revoked) applied to
integrator_credentials_view in the same transaction. The password is 32 random bytes (base62),
returned once; only its bcrypt digest is kept, which nats-server checks itself. The NATS user
name is claimed with a reservation, so two credentials never share one.

`import_file` moves the credentials of the former file-based store (`nats-integrators.json`:
user -> bcrypt digest) into events once, keeping each user and digest, so that their holders
keep working."""

from __future__ import annotations

import asyncio
from pathlib import Path

import bcrypt
import msgspec

from authpi.contracts.base import Actor, Meta
from authpi.errors import Conflict, NotFound
from authpi.eventstore.store import EventStore, Tx
from authpi.messaging import auth as nats_auth
from authpi.web.runtime import Runtime
from authpi.webhook.domain import integrator_credential
from authpi.webhook.domain.commands import (
    IntegratorCredentialCommand,
    IssueIntegratorCredential,
    RevokeIntegratorCredential,
)
from authpi.webhook.queries.integrators import CredentialRow, IntegratorQueries

BCRYPT_COST = 11
USER_SCOPE = "integrator_user"
# Who acts from the operator's command line (`authpi integrators …`).
CLI = Actor(type="system", user_agent="authpi-cli")


class Issued(msgspec.Struct, frozen=True, kw_only=True):
    credential: CredentialRow
    password: str  # shown once


def require_known_key(key: str) -> None:
    """A credential id or user we could have minted; anything else names nothing."""
    if not key.startswith(("intc_", "int_")) or len(key) > 64 or not key.isascii():
        raise NotFound("no such credential", reason="integrator_credential.not_found")


class IntegratorCredentials:
    def __init__(self, rt: Runtime, store: EventStore) -> None:
        self.rt = rt
        self.store = store
        self.queries = IntegratorQueries(store.schema)

    def _meta(self, account_id: str, credential_id: str, actor: Actor, trigger: str) -> Meta:
        return Meta(
            account_id=account_id, actor=actor, trigger=trigger, region=self.rt.settings.region,
            subject={"account_id": account_id, "integrator_credential_id": credential_id},
        )  # fmt: skip

    async def issue(
        self, account_id: str, name: str = "", *, actor: Actor, trigger: str = "api"
    ) -> Issued:
        password = self.rt.ids.secret(32)
        digest = await asyncio.to_thread(_hash, password)
        user = "int_" + self.rt.ids.secret(12)
        cmd = IssueIntegratorCredential(
            credential_id=self.rt.ids.new("intc"), account_id=account_id, user=user,
            password_bcrypt=digest, name=name, now=self.rt.clock.now_ms(),
        )  # fmt: skip
        await self._run(cmd, account_id, actor, trigger, reserve=user)
        return Issued(credential=await self.get(cmd.credential_id), password=password)

    async def revoke(
        self, key: str, *, account_id: str | None = None, actor: Actor, trigger: str = "api"
    ) -> CredentialRow:
        """`key`: the credential id or its NATS user. `account_id`: only that account's."""
        row = await self.get(key, account_id)
        cmd = RevokeIntegratorCredential(
            credential_id=row.id, account_id=account_id, now=self.rt.clock.now_ms()
        )
        await self._run(cmd, row.account_id, actor, trigger)
        return await self.get(row.id)

    async def get(self, key: str, account_id: str | None = None) -> CredentialRow:
        require_known_key(key)
        async with self.rt.pool.connection() as conn:
            row = await self.queries.find(conn, key)
        if row is None or account_id not in (None, row.account_id):
            raise NotFound("no such credential", reason="integrator_credential.not_found")
        return row

    async def listed(
        self, account_id: str | None = None, *, revoked: bool = False
    ) -> list[CredentialRow]:
        async with self.rt.pool.connection() as conn:
            return await self.queries.listed(conn, account_id, revoked=revoked)

    async def import_file(self, path: Path) -> int:
        """Issue, once, the credentials of a former `nats-integrators.json` that are not events
        yet (by user); then rename the file `*.imported`, so it is never read again. Returns how
        many were imported."""
        if not path.exists():
            return 0
        legacy = nats_auth.load_integrators(path)
        async with self.rt.pool.connection() as conn:
            known = await self.queries.users(conn)
        count = 0
        for cred in legacy.values():
            if cred.user in known:
                continue
            cmd = IssueIntegratorCredential(
                credential_id=self.rt.ids.new("intc"), account_id=cred.account_id,
                user=cred.user, password_bcrypt=cred.password_bcrypt, name=cred.name,
                now=cred.created_at or self.rt.clock.now_ms(),
            )  # fmt: skip
            try:
                await self._run(cmd, cred.account_id, CLI, "system", reserve=cred.user)
            except Conflict:  # imported meanwhile by another process
                continue
            count += 1
        path.rename(path.with_name(path.name + ".imported"))
        return count

    async def _run(
        self, cmd: IntegratorCredentialCommand, account_id: str, actor: Actor, trigger: str,
        reserve: str | None = None,
    ) -> None:  # fmt: skip
        async def claim(tx: Tx) -> None:
            if reserve is not None and tx.events:
                await tx.reserve(USER_SCOPE, reserve, cmd.credential_id)

        meta = self._meta(account_id, cmd.credential_id, actor, trigger)
        await self.store.execute(cmd.credential_id, integrator_credential, cmd, meta, [claim])


def _hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_COST)).decode()
