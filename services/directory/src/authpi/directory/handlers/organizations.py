"""The write path of organizations, their memberships, groups and organization-level API keys
(core-api.md 3.4, 3.12-3.14).

Deleting is a crash-safe cascade (core-api.md 3.12 lifecycle contract): the first transaction
records `deleting` (the organization is then 404 to every request), the cascades of children kept
in other streams run next, and a last transaction appends the one `organization.deleted` that
removes memberships and groups. Each step repeats harmlessly, so an interrupted cascade is
finished by `resume_deletions` (run at start-up and periodically by `cascade_task`) or by
repeating the DELETE."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from authpi.contracts.base import Actor, Meta
from authpi.contracts.directory import (
    OrganizationSsoDomainDeleted,
    OrganizationSsoDomainVerified,
    sso_secret_context,
)
from authpi.crypto.ids import sha256_hex
from authpi.directory.domain import api_key, organization
from authpi.directory.domain.commands.api_key import CreateApiKey
from authpi.directory.domain.commands.organization import (
    AddMember,
    CreateGroup,
    CreateOrganization,
    DeleteGroup,
    DeleteOrganization,
    FinishOrganizationDeletion,
    OrgRef,
    Profile,
    RemoveMember,
    RequireLiveOrganization,
    SsoSecretChange,
    UpdateGroup,
    UpdateMember,
    UpdateOrganization,
)
from authpi.directory.domain.org_members import member_type_of
from authpi.directory.domain.organization import OrganizationCommand
from authpi.directory.handlers.agent_members import AgentMembers
from authpi.directory.queries.lookups import Queries
from authpi.directory.queries.organizations import OrganizationQueries
from authpi.errors import Conflict, FieldProblem, NotFound, Unprocessable
from authpi.eventstore.store import EventStore, Step, Tx
from authpi.web.runtime import Runtime

# A cascade of children kept outside the organization's stream (e.g. invitations): it removes
# them for the organization id, repeatably, before `organization.deleted` is appended.
Cascade = Callable[[str, Meta], Awaitable[None]]
RESUME_EVERY_S = 60.0
# A verified SSO domain routes to one organization of its issuer (core-api.md 3.16): the claim
# is taken in the transaction that verifies it and released with the domain.
SSO_DOMAIN_SCOPE = "sso-domain"


def sso_domain_key(issuer_id: str, domain: str) -> str:
    return f"{issuer_id}:{domain}"


async def claim_sso_domains(tx: Tx) -> None:
    for stored in tx.events:
        match stored.event:
            case OrganizationSsoDomainVerified() as e:
                try:
                    await tx.reserve(
                        SSO_DOMAIN_SCOPE, sso_domain_key(e.issuer_id, e.domain), e.org_id
                    )
                except Conflict:
                    raise Conflict(
                        f"{e.domain} is verified for another organization of this issuer",
                        reason="sso_domain.taken",
                    ) from None
            case OrganizationSsoDomainDeleted() as e:
                await tx.release(SSO_DOMAIN_SCOPE, sso_domain_key(e.issuer_id, e.domain), e.org_id)
            case _:
                pass


class NewOrgApiKey(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    secret: str
    secret_hint: str
    created_at: int


class OrgKeySpec(msgspec.Struct, frozen=True, kw_only=True):
    """A validated organization-level key request (core-api.md 3.4 create body)."""

    name: str
    scopes: list[str] = []
    ip_allowlist: list[str] = []
    description: str | None = None
    tags: list[str] = []
    expires_at: int | None = None
    metadata: dict[str, Any] = {}
    secret: str | None = None
    secret_hint: str | None = None


class Organizations:
    def __init__(self, rt: Runtime, store: EventStore) -> None:
        self.rt = rt
        self.store = store
        self.queries = OrganizationQueries(store.schema)
        self.cascades: list[Cascade] = []
        self.agents = AgentMembers(rt, store)
        self.lookups = Queries(store.schema)

    def meta_of(self, ref: OrgRef, actor: Actor | None) -> Meta:
        return self._meta(ref, actor)

    def _meta(self, ref: OrgRef, actor: Actor | None, trigger: str = "api", **subject: str) -> Meta:
        return Meta(
            account_id=ref.account_id, issuer_id=ref.issuer_id, actor=actor or Actor(type="system"),
            trigger=trigger, region=self.rt.settings.region,
            subject={"org_id": ref.org_id, **subject},
        )  # fmt: skip

    async def _run(
        self, cmd: OrganizationCommand, ref: OrgRef, actor: Actor, **subject: str
    ) -> None:
        """One command on the organization's stream; `subject` adds the ids of a membership or
        group to the events' subject (platform.md 6.3)."""
        meta = self._meta(ref, actor, **subject)
        await self.store.execute(ref.org_id, organization, cmd, meta)

    async def require_issuer(self, account_id: str, issuer_id: str) -> None:
        async with self.rt.pool.connection() as conn:
            if not await self.queries.issuer_exists(conn, account_id, issuer_id):
                raise NotFound("no such issuer", reason="issuer.not_found")

    async def require_user(self, ref: OrgRef, user_id: str, field: str | None = None) -> None:
        """A user of the organization's issuer: 404, or 422 on `field` when it is a reference."""
        async with self.rt.pool.connection() as conn:
            known = await self.queries.user_exists(conn, ref.account_id, ref.issuer_id, user_id)
        if known:
            return
        if field is None:
            raise NotFound("no such user in this issuer", reason="membership.unknown_member")
        problem = FieldProblem(
            field=field, code="invalid_value", message=f"{field} is not a user of this issuer"
        )
        raise Unprocessable(problem.message, reason="organization.unknown_user", fields=[problem])

    def sso_secret(self, org_id: str, secret: str | UnsetType | None) -> SsoSecretChange | None:
        """A client secret given in the `sso` object, wrapped for the organization (DESIGN.md 6:
        never in an event in clear); `null` removes it, absent leaves it alone."""
        if secret is UNSET:
            return None
        if secret is None:
            return SsoSecretChange()
        sealed = self.rt.kek.wrap(secret.encode(), sso_secret_context(org_id))
        return SsoSecretChange(sealed=sealed, sha256=sha256_hex(secret))

    async def create(
        self, account_id: str, issuer_id: str, profile: Profile, *, actor: Actor,
        by_user_id: str | None = None, sso_secret: str | UnsetType | None = UNSET,
    ) -> str:  # fmt: skip
        await self.require_issuer(account_id, issuer_id)
        ref = OrgRef(org_id=self.rt.ids.new("org"), account_id=account_id, issuer_id=issuer_id)
        if by_user_id is not None:
            await self.require_user(ref, by_user_id, "by_user_id")
        cmd = CreateOrganization(
            ref=ref, profile=profile, now=self.rt.clock.now_ms(), by_user_id=by_user_id,
            sso_secret=self.sso_secret(ref.org_id, sso_secret),
            allow_insecure_sso=self.rt.settings.sso_allow_insecure,
        )  # fmt: skip
        await self._run(cmd, ref, actor)
        return ref.org_id

    async def update(
        self, cmd: UpdateOrganization, actor: Actor, sso_secret: str | UnsetType | None = UNSET
    ) -> None:
        cmd = msgspec.structs.replace(
            cmd, now=self.rt.clock.now_ms(), sso_secret=self.sso_secret(cmd.ref.org_id, sso_secret),
            allow_insecure_sso=self.rt.settings.sso_allow_insecure,
        )  # fmt: skip
        await self._run(cmd, cmd.ref, actor)

    async def delete(self, ref: OrgRef, *, actor: Actor, if_match: str | None = None) -> None:
        cmd = DeleteOrganization(ref=ref, now=self.rt.clock.now_ms(), if_match=if_match)
        await self._run(cmd, ref, actor)
        await self.finish_deletion(ref.org_id, actor)

    async def finish_deletion(self, org_id: str, actor: Actor | None = None) -> None:
        """The rest of the cascade of a `deleting` organization; repeatable."""
        state, _ = await self.store.read_state(org_id, organization)
        if not isinstance(state, organization.Org) or state.status != "deleting":
            return
        ref = OrgRef(org_id=org_id, account_id=state.account_id, issuer_id=state.issuer_id)
        meta = self._meta(ref, actor, trigger="api" if actor else "system")
        for cascade in self.cascades:
            await cascade(org_id, meta)
        cmd = FinishOrganizationDeletion(org_id=org_id, now=self.rt.clock.now_ms())
        await self.store.execute(org_id, organization, cmd, meta, reactions=[claim_sso_domains])

    async def resume_deletions(self) -> list[str]:
        """Finish every cascade an earlier process left `deleting`; returns their ids."""
        async with self.rt.pool.connection() as conn:
            pending = await self.queries.deleting(conn)
        for org_id in pending:
            await self.finish_deletion(org_id)
        return pending

    async def cascade_task(self, stop: asyncio.Event) -> None:
        """Background task: resume interrupted cascades at start-up, then now and then."""
        while not stop.is_set():
            await self.resume_deletions()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RESUME_EVERY_S)

    async def add_member(self, cmd: AddMember, actor: Actor) -> None:
        subject = {"member_id": cmd.member_id, "member_type": cmd.member_type}
        if cmd.member_type == "agent":
            await self.agents.add(cmd, self._meta(cmd.ref, actor, **subject))
            return
        await self.require_user(cmd.ref, cmd.member_id)
        cmd = msgspec.structs.replace(cmd, now=self.rt.clock.now_ms())
        await self._run(cmd, cmd.ref, actor, **subject)

    async def update_member(self, cmd: UpdateMember, actor: Actor) -> None:
        cmd = msgspec.structs.replace(cmd, now=self.rt.clock.now_ms())
        member_type = member_type_of(cmd.member_id)
        await self._run(cmd, cmd.ref, actor, member_id=cmd.member_id, member_type=member_type)

    async def remove_member(self, cmd: RemoveMember, actor: Actor) -> None:
        cmd = msgspec.structs.replace(cmd, now=self.rt.clock.now_ms())
        member_type = member_type_of(cmd.member_id)
        await self._run(cmd, cmd.ref, actor, member_id=cmd.member_id, member_type=member_type)

    async def create_group(self, cmd: CreateGroup, actor: Actor) -> str:
        group_id = self.rt.ids.new("grp")
        cmd = msgspec.structs.replace(cmd, group_id=group_id, now=self.rt.clock.now_ms())
        await self._run(cmd, cmd.ref, actor, group_id=group_id)
        return group_id

    async def update_group(self, cmd: UpdateGroup, actor: Actor) -> None:
        cmd = msgspec.structs.replace(cmd, now=self.rt.clock.now_ms())
        await self._run(cmd, cmd.ref, actor, group_id=cmd.group_id)

    async def delete_group(self, cmd: DeleteGroup, actor: Actor) -> None:
        cmd = msgspec.structs.replace(cmd, now=self.rt.clock.now_ms())
        await self._run(cmd, cmd.ref, actor, group_id=cmd.group_id)

    async def create_api_key(self, ref: OrgRef, spec: OrgKeySpec, *, actor: Actor) -> NewOrgApiKey:
        """An organization-level key: it acts as the organization (core-api.md 3.4). Created in
        one transaction with a check that the organization is live."""
        key_id, now = self.rt.ids.new("key"), self.rt.clock.now_ms()
        secret = spec.secret or self.rt.ids.secret(32)
        hint = spec.secret_hint or secret[-8:]
        cmd = CreateApiKey(
            key_id=key_id, account_id=ref.account_id, org_id=ref.org_id, issuer_id=ref.issuer_id,
            name=spec.name, description=spec.description, tags=spec.tags, scopes=spec.scopes,
            ip_allowlist=spec.ip_allowlist, expires_at=spec.expires_at, metadata=spec.metadata,
            secret_sha256=sha256_hex(secret), secret_hint=hint, now=now,
        )  # fmt: skip
        steps = [
            Step(ref.org_id, organization, RequireLiveOrganization(ref=ref)),
            Step(key_id, api_key, cmd),
        ]
        await self.store.execute_all(steps, self._meta(ref, actor))
        return NewOrgApiKey(key_id=key_id, secret=secret, secret_hint=hint, created_at=now)
