"""The directory's side of an organization SSO sign-in (authpi.contracts.directory.SsoDirectory):
the token service checked the upstream's ID token; here the issuer's user holding the asserted
address is found (by its username reservation) or created just in time (`user.created` with
method `sso` and `user.sso.provisioned`), the upstream identity is linked to it
(`user.sso.linked`, once), and it becomes a member of the organization with the default member
scopes (`organization.membership.created`, once). User and membership change in one commit, and
only through an active organization with SSO enabled whose verified SSO domains include the
address's domain (decided on the organization's stream, in the same transaction).

Just-in-time users skip the issuer's signup policy (open, invite-only, approval): the
organization vouches for the addresses of the domains it verified, through its own IdP."""

from __future__ import annotations

from typing import Any

from authpi.contracts.base import Actor, Meta
from authpi.contracts.directory import SsoIdentity, SsoSignIn
from authpi.directory.domain import organization, user
from authpi.directory.domain.commands.organization import JoinThroughSso, OrgRef
from authpi.directory.domain.commands.user import LinkSsoIdentity, SsoLink
from authpi.directory.handlers.organizations import Organizations
from authpi.directory.handlers.users import (
    USERNAME_SCOPE,
    NewUser,
    Users,
    normalized_username,
    taken_username,
    username_key,
)
from authpi.errors import Conflict
from authpi.eventstore.store import Step
from authpi.web.metadata import check_metadata
from authpi.web.text import check_storable

ATTEMPTS = 3  # a first sign-in racing another one for the same address links on its retry
# Upstream claims -> the profile fields a user's claims are read from (token queries.people).
PROFILE_CLAIMS = {"name": "display_name", "given_name": "first_name", "family_name": "last_name"}


def jit_profile(claims: dict[str, Any]) -> dict[str, Any]:
    """The profile a just-in-time user starts with: the upstream's name claims, when text."""
    return {
        field: value.strip()[:256]
        for claim, field in PROFILE_CLAIMS.items()
        if isinstance(value := claims.get(claim), str) and value.strip()
    }


class SsoSignIns:
    def __init__(self, users: Users, organizations: Organizations) -> None:
        self.users = users
        self.organizations = organizations
        self.rt = users.rt
        self.store = users.store

    def _meta(self, ref: OrgRef, user_id: str) -> Meta:
        return Meta(
            account_id=ref.account_id, issuer_id=ref.issuer_id,
            actor=Actor(type="user", user_id=user_id), trigger="idp",
            region=self.rt.settings.region, subject={"user_id": user_id, "org_id": ref.org_id},
        )  # fmt: skip

    async def _holder(self, issuer_id: str, username_hash: str) -> str | None:
        async with self.rt.pool.connection() as conn:
            return await self.organizations.lookups.reservation(
                conn, USERNAME_SCOPE, username_key(issuer_id, username_hash)
            )

    async def sign_in(
        self, *, account_id: str, issuer_id: str, org_id: str, identity: SsoIdentity
    ) -> SsoSignIn:
        email = normalized_username("email", identity.email)
        ref = OrgRef(org_id=org_id, account_id=account_id, issuer_id=issuer_id)
        await self.users.require_issuer(account_id, issuer_id)
        link = SsoLink(
            org_id=org_id, protocol=identity.protocol, external_issuer=identity.external_issuer,
            external_subject=identity.external_subject,
        )  # fmt: skip
        domain = email.rpartition("@")[2]
        username_hash = self.users.vault.username_hash(issuer_id, email)
        for attempt in range(ATTEMPTS):
            holder = await self._holder(issuer_id, username_hash)
            now = self.rt.clock.now_ms()
            if holder is not None:
                steps = [
                    Step(holder, user, LinkSsoIdentity(
                        user_id=holder, issuer_id=issuer_id, link=link, now=now)),
                    Step(org_id, organization, JoinThroughSso(
                        ref=ref, user_id=holder, domain=domain, now=now)),
                ]  # fmt: skip
                linked, joined = await self.store.execute_all(steps, self._meta(ref, holder))
                return SsoSignIn(
                    user_id=holder, linked=bool(linked.events), joined=bool(joined.events)
                )
            profile = jit_profile(identity.profile)
            check_storable(profile)
            check_metadata(profile, "profile")
            new = NewUser(username_type="email", username=email, profile=profile)
            create, claim = self.users.creation(issuer_id, new, method="sso", sso=link)
            user_id = create.stream_id
            join = JoinThroughSso(ref=ref, user_id=user_id, domain=domain, now=now)
            steps = [create, Step(org_id, organization, join)]
            try:
                with taken_username():
                    _, joined = await self.store.execute_all(
                        steps, self._meta(ref, user_id), [claim]
                    )
            except Conflict as exc:
                if exc.reason != "user.username" or attempt == ATTEMPTS - 1:
                    raise
                continue  # created by a concurrent sign-in meanwhile: link to it
            return SsoSignIn(user_id=user_id, provisioned=True, joined=bool(joined.events))
        raise AssertionError("unreachable: the last attempt returns or raises")
