"""An organization's SSO (core-api.md 3.12 `sso`, 3.16): its email domains, verified by a DNS TXT
challenge (the handler looks, this module decides), the SSO client secret (the handler wraps it
under the key-encryption key; the state keeps its digest), the enabled / disabled / updated
events of its `sso` configuration (validated by org_sso_config), and the memberships an SSO
sign-in creates. Part of the organization's stream: organization.py calls in here and folds the
result.

A verified domain routes its addresses to the organization (`/{issuer}/sso/discover`), so one
domain is verified by one organization of an issuer at most: the handler reserves it in the
transaction that verifies it and releases it with the domain."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.directory import (
    SSO_CLIENT_SECRET,
    OrganizationSsoDisabled,
    OrganizationSsoDomainCreated,
    OrganizationSsoDomainDeleted,
    OrganizationSsoDomainVerified,
    OrganizationSsoEnabled,
    OrganizationSsoUpdated,
)
from authpi.directory.domain import org_members
from authpi.directory.domain.commands.organization import (
    AddMember,
    AddSsoDomain,
    JoinThroughSso,
    RemoveSsoDomain,
    RotateSsoSecret,
    SsoSecretChange,
    VerifySsoDomain,
)
from authpi.directory.domain.org_sso_config import as_object, stored
from authpi.directory.domain.organization_state import Org, SsoDomain
from authpi.errors import Conflict, FieldProblem, NotFound, Unprocessable
from authpi.web.etag import check_if_match

MAX_DOMAINS = 50  # per organization; the 51st is a 422
CHALLENGE_LABEL = "_authpi-sso"
SsoCommand = AddSsoDomain | VerifySsoDomain | RemoveSsoDomain | RotateSsoSecret | JoinThroughSso
SsoEvent = (
    OrganizationSsoEnabled | OrganizationSsoDisabled | OrganizationSsoUpdated
    | OrganizationSsoDomainCreated | OrganizationSsoDomainVerified | OrganizationSsoDomainDeleted
)  # fmt: skip


def challenge_name(domain: str) -> str:
    """Where the organization publishes its TXT challenge for `domain`."""
    return f"{CHALLENGE_LABEL}.{domain}"


def challenge_token(issuer_id: str, org_id: str, domain: str) -> str:
    """The TXT value proving that whoever runs `domain`'s DNS routes it to `org_id`. Public by
    design (like ACME's dns-01 key authorization): it names one issuer, one organization and
    one domain, so a record published for one organization never verifies another."""
    seed = f"authpi-sso-challenge\0{issuer_id}\0{org_id}\0{domain}".encode()
    digest = hashlib.sha256(seed).digest()
    return "authpi-sso-verify=" + base64.b32encode(digest).decode().rstrip("=").lower()


def find(org: Org, domain: str) -> SsoDomain:
    found = org.sso_domains.get(domain)
    if found is None:
        raise NotFound("no such SSO domain in this organization", reason="sso_domain.not_found")
    return found


def decide(cmd: SsoCommand, org: Org) -> list[Event]:
    if isinstance(cmd, JoinThroughSso):
        return _join(cmd, org)
    check_if_match(cmd.if_match, org.etag)
    at = org.changed_at(cmd.now)
    ids = {"org_id": org.id, "issuer_id": org.issuer_id}
    match cmd:
        case AddSsoDomain():
            if cmd.domain in org.sso_domains:
                raise Conflict("the organization already has this SSO domain",
                               reason="sso_domain.exists")  # fmt: skip
            if len(org.sso_domains) >= MAX_DOMAINS:
                problem = FieldProblem(
                    field="domain", code="too_many",
                    message=f"an organization has at most {MAX_DOMAINS} SSO domains",
                )  # fmt: skip
                raise Unprocessable(problem.message, reason="sso_domain.limit", fields=[problem])
            return [OrganizationSsoDomainCreated(
                **ids, domain=cmd.domain, txt_record_name=challenge_name(cmd.domain),
                txt_record_value=challenge_token(org.issuer_id, org.id, cmd.domain),
                created_at=at,
            )]  # fmt: skip
        case VerifySsoDomain():
            domain = find(org, cmd.domain)
            token = challenge_token(org.issuer_id, org.id, cmd.domain)
            if domain.verified or token not in cmd.published:
                return []  # nothing changes; the handler answers `verified` from the state
            return [OrganizationSsoDomainVerified(**ids, domain=cmd.domain, verified_at=at)]
        case RemoveSsoDomain():
            find(org, cmd.domain)
            return [OrganizationSsoDomainDeleted(**ids, domain=cmd.domain, deleted_at=at)]
        case RotateSsoSecret():
            sso = as_object(
                msgspec.structs.replace(stored(org.profile.sso), client_secret_set=True)
            )
            return [OrganizationSsoUpdated(
                **ids, sso=sso, changed=[SSO_CLIENT_SECRET], secret_sha256=cmd.secret.sha256,
                client_secret_sealed=cmd.secret.sealed, updated_at=at,
            )]  # fmt: skip


def _join(cmd: JoinThroughSso, org: Org) -> list[Event]:
    """A member through SSO: only through an active organization with SSO on, for an address
    of a domain it verified; an existing membership (even suspended) is left as it is."""
    if org.status != "active":
        raise Conflict("the organization is suspended", reason="sso.organization_suspended")
    if not stored(org.profile.sso).enabled:
        raise Conflict("the organization has SSO disabled", reason="sso.disabled")
    domain = org.sso_domains.get(cmd.domain)
    if domain is None or not domain.verified:
        raise Conflict(f"{cmd.domain} is not a verified SSO domain of the organization",
                       reason="sso.domain_unverified")  # fmt: skip
    if cmd.user_id in org.members:
        return []
    add = AddMember(ref=cmd.ref, member_id=cmd.user_id, member_type="user", now=cmd.now)
    return org_members.decide(add, org)


def config_changed(
    org_id: str,
    issuer_id: str,
    old: dict[str, Any],
    new: dict[str, Any],
    secret: SsoSecretChange | None,
    at: int,
) -> list[Event]:
    """The `organization.sso.*` event of a create or PATCH that changes the `sso` object or the
    client secret: enabled or disabled when the `enabled` flag flips, updated otherwise. A
    secret change names `client_secret` and carries the wrapped secret."""
    if new == old and secret is None:
        return []
    changed = sorted(k for k in {*old, *new} if old.get(k) != new.get(k))
    if secret is not None:
        changed = sorted({*changed, SSO_CLIENT_SECRET})
    was, now = old.get("enabled") is True, new.get("enabled") is True
    kind = (
        OrganizationSsoEnabled if now and not was
        else OrganizationSsoDisabled if was and not now
        else OrganizationSsoUpdated
    )  # fmt: skip
    return [kind(
        org_id=org_id, issuer_id=issuer_id, sso=new, changed=changed, updated_at=at,
        secret_sha256=secret.sha256 if secret else None,
        client_secret_sealed=secret.sealed if secret else None,
    )]  # fmt: skip


def removals(org: Org, at: int) -> list[Event]:
    """Every domain of an organization whose deletion cascade ends: each releases its claim."""
    return [
        OrganizationSsoDomainDeleted(org_id=org.id, issuer_id=org.issuer_id, domain=d,
                                     deleted_at=at)
        for d in sorted(org.sso_domains)
    ]  # fmt: skip


def evolve(org: Org, event: SsoEvent) -> Org:
    match event:
        case OrganizationSsoDomainCreated():
            domain = SsoDomain(domain=event.domain, created_at=event.created_at)
            return msgspec.structs.replace(
                org, sso_domains={**org.sso_domains, event.domain: domain},
                updated_at=event.created_at,
            )  # fmt: skip
        case OrganizationSsoDomainVerified():
            # Streams written before domains were added through the routes hold a verification
            # with no creation before it: the domain counts as created when it was verified.
            known = org.sso_domains.get(event.domain) or SsoDomain(
                domain=event.domain, created_at=event.verified_at
            )
            domain = msgspec.structs.replace(known, verified_at=event.verified_at)
            return msgspec.structs.replace(
                org, sso_domains={**org.sso_domains, event.domain: domain},
                updated_at=event.verified_at,
            )  # fmt: skip
        case OrganizationSsoDomainDeleted():
            rest = {k: v for k, v in org.sso_domains.items() if k != event.domain}
            return msgspec.structs.replace(org, sso_domains=rest, updated_at=event.deleted_at)
        case OrganizationSsoEnabled() | OrganizationSsoDisabled() | OrganizationSsoUpdated():
            profile = msgspec.structs.replace(org.profile, sso=event.sso)
            if SSO_CLIENT_SECRET in event.changed:
                digest = event.secret_sha256
            else:  # before secrets were wrapped, a rotation carried only its digest
                digest = event.secret_sha256 or org.sso_secret_sha256
            return msgspec.structs.replace(
                org, profile=profile, sso_secret_sha256=digest, updated_at=event.updated_at
            )
