"""The write path of organization SSO (core-api.md 3.16): add a domain (its TXT challenge comes
back), verify it (the TXT record is looked up through `probe` before the transaction and the
decider judges what was seen), remove it, and rotate the SSO client secret (drawn here, shown
once, kept as a digest). A verified domain is reserved for its organization within the issuer in
the same transaction (a second organization's verification is a 409) and released with it.

The federated sign-in itself runs in the token service (`/{issuer}/sso/start` and
`/{issuer}/sso/callback`); what it changes here (the user, its link, its membership) goes through
handlers.sso_sign_in."""

from __future__ import annotations

import msgspec

from authpi.contracts.base import Actor
from authpi.directory.adapters.dns_probe import DomainProbe
from authpi.directory.domain import organization
from authpi.directory.domain.commands.organization import (
    AddSsoDomain,
    OrgRef,
    RemoveSsoDomain,
    RotateSsoSecret,
    VerifySsoDomain,
)
from authpi.directory.domain.org_sso import challenge_name, challenge_token
from authpi.directory.domain.organization_state import Org, live_org
from authpi.directory.handlers.organizations import (
    SSO_DOMAIN_SCOPE,
    Organizations,
    claim_sso_domains,
    sso_domain_key,
)
from authpi.errors import Conflict


class AddedDomain(msgspec.Struct, frozen=True, kw_only=True):
    domain: str
    txt_record_name: str
    txt_record_value: str


class Verification(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    verified: bool
    error: str | None = None


class OrganizationSso:
    def __init__(self, organizations: Organizations, probe: DomainProbe) -> None:
        self.organizations = organizations
        self.rt = organizations.rt
        self.store = organizations.store
        # Replaceable: tests point it at a DNS server of their own.
        self.probe = probe

    async def _run(self, cmd: organization.OrganizationCommand, ref: OrgRef, actor: Actor) -> Org:
        meta = self.organizations.meta_of(ref, actor)
        outcome = await self.store.execute(
            ref.org_id, organization, cmd, meta, reactions=[claim_sso_domains]
        )
        return live_org(outcome.state, ref)

    async def _taken_elsewhere(self, ref: OrgRef, domain: str) -> bool:
        async with self.rt.pool.connection() as conn:
            owner = await self.organizations.lookups.reservation(
                conn, SSO_DOMAIN_SCOPE, sso_domain_key(ref.issuer_id, domain)
            )
        return owner is not None and owner != ref.org_id

    async def add(
        self, ref: OrgRef, domain: str, *, actor: Actor, if_match: str | None = None
    ) -> AddedDomain:
        if await self._taken_elsewhere(ref, domain):
            raise Conflict(f"{domain} is verified for another organization of this issuer",
                           reason="sso_domain.taken")  # fmt: skip
        cmd = AddSsoDomain(ref=ref, domain=domain, now=self.rt.clock.now_ms(), if_match=if_match)
        await self._run(cmd, ref, actor)
        return AddedDomain(
            domain=domain, txt_record_name=challenge_name(domain),
            txt_record_value=challenge_token(ref.issuer_id, ref.org_id, domain),
        )  # fmt: skip

    async def verify(
        self, ref: OrgRef, domain: str, *, actor: Actor, if_match: str | None = None
    ) -> Verification:
        state, _ = await self.store.read_state(ref.org_id, organization)
        org = live_org(state, ref)
        known = org.sso_domains.get(domain)
        published: frozenset[str] = frozenset()
        if known is not None and not known.verified:
            published = await self.probe.txt_values(challenge_name(domain))
        cmd = VerifySsoDomain(ref=ref, domain=domain, published=published,
                              now=self.rt.clock.now_ms(), if_match=if_match)  # fmt: skip
        after = await self._run(cmd, ref, actor)
        if after.sso_domains[domain].verified:
            return Verification(verified=True)
        token = challenge_token(ref.issuer_id, ref.org_id, domain)
        return Verification(
            verified=False,
            error=f"{challenge_name(domain)} does not publish the TXT record {token} yet",
        )

    async def remove(
        self, ref: OrgRef, domain: str, *, actor: Actor, if_match: str | None = None
    ) -> None:
        cmd = RemoveSsoDomain(ref=ref, domain=domain, now=self.rt.clock.now_ms(),
                              if_match=if_match)  # fmt: skip
        await self._run(cmd, ref, actor)

    async def rotate_secret(self, ref: OrgRef, *, actor: Actor, if_match: str | None = None) -> str:
        """A new SSO client secret, drawn here and shown once: the organization registers it at
        its upstream IdP as this platform's client secret (for an upstream that lets the client
        choose it; otherwise the PATCH sets the one the upstream issued). Kept only wrapped."""
        secret = self.rt.ids.secret(32)
        sealed = self.organizations.sso_secret(ref.org_id, secret)
        assert sealed is not None
        cmd = RotateSsoSecret(ref=ref, secret=sealed, now=self.rt.clock.now_ms(),
                              if_match=if_match)  # fmt: skip
        await self._run(cmd, ref, actor)
        return secret
