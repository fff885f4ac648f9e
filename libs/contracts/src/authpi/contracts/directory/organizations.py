"""Organization, membership and group events (platform.md 6.3, core-api.md 3.12-3.14).

One organization's events, including its memberships and groups, share the organization's stream:
the organization is the consistency boundary of `max_members`, group references and the delete
cascade. `organization.deleted` is emitted once, when the cascade finished (platform.md 1.9).
`InvitationAnswers` is how another service (the login portal) answers an invitation.

An invitation's personal data (the invited address, the inviter, the message) travels only as
`pii`, sealed under the invitation's own data key (DESIGN.md 7, `authpi.crypto.pii`), and the
address's lookups use `email_hash` (the HMAC a username of that address has in the issuer).
Streams written before carried them in clear: those fields stay, with defaults, so that old
events still decode (their readers seal or hash them on the way, see the directory's
`handlers.invitation_pii`); no event is written with them any more."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from authpi.contracts.base import Event

SSO_CLIENT_SECRET = "client_secret"


def sso_secret_context(org_id: str) -> str:
    """The key-wrapping context of an organization's SSO client secret: a wrapped secret opens
    only for the organization it was sealed for."""
    return f"authpi.org-sso-client-secret:{org_id}"


class OrganizationSnapshot(Event, frozen=True, kw_only=True):
    """The organization's editable fields, as created or after an update."""

    id: str
    issuer_id: str
    account_id: str
    name: str | None = None
    description: str | None = None
    logo_url: str | None = None
    org_type: str = "default"
    max_members: int | None = None
    default_member_scopes: list[str] = []
    invitation_enabled: bool = True
    invitation_message: str | None = None
    address: dict[str, Any] | None = None
    business_details: dict[str, Any] = {}
    contact: dict[str, Any] = {}
    social_links: list[dict[str, Any]] = []
    scopes: list[str] = []
    security: dict[str, Any] = {}
    sso: dict[str, Any] = {}
    custom_fields: dict[str, Any] = {}
    metadata: dict[str, Any] = {}


class OrganizationCreated(
    OrganizationSnapshot, frozen=True, kw_only=True, tag="organization.created"
):
    created_at: int


class OrganizationUpdated(
    OrganizationSnapshot, frozen=True, kw_only=True, tag="organization.updated"
):
    """A snapshot after the change. `status` is set only when it moved: `deleting` marks the
    start of the delete cascade (core-api.md 3.12 lifecycle contract)."""

    changed: list[str]
    status: str | None = None
    status_reason: str | None = None
    status_by: str | None = None
    updated_at: int


class OrganizationSuspended(Event, frozen=True, kw_only=True, tag="organization.suspended"):
    id: str
    status: str = "suspended"
    status_reason: str | None = None
    status_by: str | None = None
    status_at: int


class OrganizationReactivated(Event, frozen=True, kw_only=True, tag="organization.reactivated"):
    id: str
    status: str = "active"
    status_reason: str | None = None
    status_by: str | None = None
    status_at: int


class OrganizationDeleted(Event, frozen=True, kw_only=True, tag="organization.deleted"):
    """The cascade finished: memberships and groups of the organization are gone with it."""

    id: str
    issuer_id: str
    deleted_at: int


class MembershipSnapshot(Event, frozen=True, kw_only=True):
    org_id: str
    issuer_id: str
    member_id: str
    member_type: str
    status: str = "active"
    status_reason: str | None = None
    status_by: str | None = None
    scopes: list[str] = []
    groups: list[str] = []
    user_title: str | None = None
    metadata: dict[str, Any] = {}


class OrganizationMembershipCreated(
    MembershipSnapshot, frozen=True, kw_only=True, tag="organization.membership.created"
):
    joined_at: int


class OrganizationMembershipUpdated(
    MembershipSnapshot, frozen=True, kw_only=True, tag="organization.membership.updated"
):
    changed: list[str]
    updated_at: int


class OrganizationMembershipDeleted(
    Event, frozen=True, kw_only=True, tag="organization.membership.deleted"
):
    org_id: str
    issuer_id: str
    member_id: str
    member_type: str
    deleted_at: int


class GroupSnapshot(Event, frozen=True, kw_only=True):
    id: str
    org_id: str
    issuer_id: str
    name: str
    description: str | None = None
    scopes: list[str] = []
    metadata: dict[str, Any] = {}


class OrganizationGroupCreated(
    GroupSnapshot, frozen=True, kw_only=True, tag="organization.group.created"
):
    created_at: int


class OrganizationGroupUpdated(
    GroupSnapshot, frozen=True, kw_only=True, tag="organization.group.updated"
):
    changed: list[str]
    updated_at: int


class OrganizationGroupDeleted(Event, frozen=True, kw_only=True, tag="organization.group.deleted"):
    """Also removes the group from every membership that listed it (core-api.md 3.14)."""

    id: str
    org_id: str
    issuer_id: str
    deleted_at: int


class OrganizationSsoSnapshot(Event, frozen=True, kw_only=True):
    """The organization's SSO configuration after a change (core-api.md 3.12 `sso`, 3.16):
    `enabled`, `sso_only` and the upstream IdP's settings, never a secret in clear.

    When `changed` names `client_secret`, this change set, rotated or cleared the SSO client
    secret (the secret this platform presents to the organization's upstream IdP):
    `client_secret_sealed` is that secret wrapped by the deployment's key-encryption key
    (`authpi.crypto.envelope.Kek.wrap`, context `sso_secret_context(org_id)`), or None once
    cleared, and `secret_sha256` its digest. Both are internal: public data never carries them
    (platform.md 6.3); the token service unwraps the secret to call the upstream's token
    endpoint."""

    org_id: str
    issuer_id: str
    sso: dict[str, Any] = {}
    changed: list[str] = []
    secret_sha256: str | None = None
    client_secret_sealed: str | None = None
    updated_at: int


class OrganizationSsoEnabled(OrganizationSsoSnapshot, frozen=True, kw_only=True,
                             tag="organization.sso.enabled"):  # fmt: skip
    pass


class OrganizationSsoDisabled(OrganizationSsoSnapshot, frozen=True, kw_only=True,
                              tag="organization.sso.disabled"):  # fmt: skip
    pass


class OrganizationSsoUpdated(OrganizationSsoSnapshot, frozen=True, kw_only=True,
                             tag="organization.sso.updated"):  # fmt: skip
    pass


class OrganizationSsoDomainCreated(
    Event, frozen=True, kw_only=True, tag="organization.sso.domain-created"
):
    """An SSO domain was added, unverified: its owner publishes `txt_record_value` at
    `txt_record_name`, then asks for verification (core-api.md 3.16)."""

    org_id: str
    issuer_id: str
    domain: str
    txt_record_name: str
    txt_record_value: str
    created_at: int


class OrganizationSsoDomainVerified(
    Event, frozen=True, kw_only=True, tag="organization.sso.domain-verified"
):
    """An SSO domain of the organization passed its DNS check (core-api.md 3.16): addresses of
    that domain may be routed to the organization's SSO connection."""

    org_id: str
    issuer_id: str
    domain: str
    verified_at: int


class OrganizationSsoDomainDeleted(
    Event, frozen=True, kw_only=True, tag="organization.sso.domain-deleted"
):
    org_id: str
    issuer_id: str
    domain: str
    deleted_at: int


class InvitationSnapshot(Event, frozen=True, kw_only=True):
    """An invitation's editable fields, as created or after an update (core-api.md 3.15).
    `message` is legacy (clear, before sealing): the message now travels inside `pii`."""

    id: str
    org_id: str
    issuer_id: str
    user_title: str | None = None
    message: str | None = None
    scopes: list[str] = []
    metadata: dict[str, Any] = {}
    # AES-GCM ciphertext (base64) of the invitation's InvitationPii under its own data key.
    pii: str | None = None


class OrganizationInvitationCreated(
    InvitationSnapshot, frozen=True, kw_only=True, tag="organization.invitation.created"
):
    """Created and emailed. The link's token is never stored: only its digest, which the public
    event leaves out (platform.md 6.1), as it leaves out `pii` and `email_hash`.
    `email_invited` and `inviter` are legacy (clear, before sealing)."""

    email_hash: str | None = None
    email_invited: str | None = None
    user_id_invited: str | None = None
    inviter: dict[str, Any] | None = None
    token_sha256: str
    expires_at: int
    created_at: int


class OrganizationInvitationUpdated(
    InvitationSnapshot, frozen=True, kw_only=True, tag="organization.invitation.updated"
):
    """A PATCH of a pending invitation (internal: not in the webhook catalogue). `pii` is the
    complete new sealed snapshot when the message changed."""

    changed: list[str]
    updated_at: int


class OrganizationInvitationResent(
    Event, frozen=True, kw_only=True, tag="organization.invitation.resent"
):
    """Emailed again with a new link (internal): the previous link's token stops working."""

    id: str
    org_id: str
    issuer_id: str
    token_sha256: str
    sent_at: int


class OrganizationInvitationAccepted(
    Event, frozen=True, kw_only=True, tag="organization.invitation.accepted"
):
    """The invitee accepted; the membership is created in the same commit."""

    id: str
    org_id: str
    issuer_id: str
    user_id: str
    email_invited: str | None = None  # legacy (clear, before sealing)
    scopes: list[str] = []
    accepted_at: int


class OrganizationInvitationDeclined(
    Event, frozen=True, kw_only=True, tag="organization.invitation.declined"
):
    """The invitee declined: the invitation's data key is destroyed in the same commit."""

    id: str
    org_id: str
    issuer_id: str
    email_invited: str | None = None  # legacy (clear, before sealing)
    declined_at: int


class OrganizationInvitationDeleted(
    Event, frozen=True, kw_only=True, tag="organization.invitation.deleted"
):
    """Revoked: the invitation can no longer be accepted, and its data key is destroyed in the
    same commit."""

    id: str
    org_id: str
    issuer_id: str
    revoked_at: int


OrganizationEvent = (
    OrganizationCreated
    | OrganizationUpdated
    | OrganizationSuspended
    | OrganizationReactivated
    | OrganizationDeleted
    | OrganizationMembershipCreated
    | OrganizationMembershipUpdated
    | OrganizationMembershipDeleted
    | OrganizationGroupCreated
    | OrganizationGroupUpdated
    | OrganizationGroupDeleted
    | OrganizationSsoEnabled
    | OrganizationSsoDisabled
    | OrganizationSsoUpdated
    | OrganizationSsoDomainCreated
    | OrganizationSsoDomainVerified
    | OrganizationSsoDomainDeleted
    | OrganizationInvitationCreated
    | OrganizationInvitationUpdated
    | OrganizationInvitationResent
    | OrganizationInvitationAccepted
    | OrganizationInvitationDeclined
    | OrganizationInvitationDeleted
)


@runtime_checkable
class InvitationAnswers(Protocol):
    """The invitee's answer through the emailed link (core-api.md 3.15, idp-api.md 12.6):
    commands on the directory's Organization aggregate that the token service's hosted portal
    calls. The directory implements them (its `invitations` export); the platform host wires it
    into the token service, in-process like `UserRegistry`. A link names its invitation by the
    token it carries; every refusal is an authpi.errors exception with a `reason`: NotFound
    (`invitation.not_found`: unknown, superseded or of another issuer) or Conflict
    (`invitation.not_pending`, `invitation.expired`, `organization.suspended`,
    `invitation.disabled`, `invitation.other_address`, `membership.exists`), or Unprocessable
    when the organization is full (`max_members`)."""

    async def answer(
        self, issuer_id: str, token: str, *, accept: bool, user_id: str | None = None
    ) -> object:
        """Accept as `user_id` (who must hold the invited address: the membership is created
        in the same commit) or decline."""
        ...

    async def register_invited(
        self,
        *,
        account_id: str,
        issuer_id: str,
        token: str,
        username: str,
        profile: dict[str, Any],
    ) -> str:
        """Sign up with the invited address and accept in one commit; the new user's id.
        Conflict (reason `user.username`) when the address already has an account."""
        ...
