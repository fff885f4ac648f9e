"""Commands of the Organization aggregate, its memberships and groups (internal; never
published). Ids, times and the existence of referenced users are decided by the handler; UNSET
means "not in the PATCH body"."""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType


class Profile(msgspec.Struct, frozen=True, kw_only=True):
    """The organization's editable fields (core-api.md 3.12 create/update body)."""

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


PROFILE_FIELDS: tuple[str, ...] = Profile.__struct_fields__


class OrgRef(msgspec.Struct, frozen=True, kw_only=True):
    """Which organization a command addresses: it must live in this account and issuer."""

    org_id: str
    account_id: str
    issuer_id: str


class SsoSecretChange(msgspec.Struct, frozen=True, kw_only=True):
    """A new SSO client secret, wrapped by the handler under the key-encryption key (`sealed`,
    with its digest), or with both None its removal. Never the secret itself."""

    sealed: str | None = None
    sha256: str | None = None


class CreateOrganization(msgspec.Struct, frozen=True, kw_only=True):
    """`profile.sso` holds the body's `sso` fields (a patch of the default configuration);
    `allow_insecure_sso` is the deployment's URL policy (AUTHPI_SSO_ALLOW_INSECURE)."""

    ref: OrgRef
    profile: Profile
    now: int
    # Also make this (already checked) user a member holding every organization scope.
    by_user_id: str | None = None
    sso_secret: SsoSecretChange | None = None
    allow_insecure_sso: bool = False


class UpdateOrganization(msgspec.Struct, frozen=True, kw_only=True):
    ref: OrgRef
    now: int
    # Profile fields present in the body; `metadata` and `custom_fields` are merge patches, and
    # so is `sso` (the fields it names; see domain.org_sso_config).
    changes: dict[str, Any] = {}
    status: str | UnsetType = UNSET
    status_reason: str | None = None
    status_by: str | None = None
    if_match: str | None = None
    sso_secret: SsoSecretChange | None = None
    allow_insecure_sso: bool = False


class DeleteOrganization(msgspec.Struct, frozen=True, kw_only=True):
    """Starts the cascade: the organization becomes `deleting`."""

    ref: OrgRef
    now: int
    if_match: str | None = None


class FinishOrganizationDeletion(msgspec.Struct, frozen=True, kw_only=True):
    """Ends the cascade of a `deleting` organization with `organization.deleted`."""

    org_id: str
    now: int


class RequireLiveOrganization(msgspec.Struct, frozen=True, kw_only=True):
    """A read-only check for writes beside the organization (its API keys): decides nothing."""

    ref: OrgRef


class AddMember(msgspec.Struct, frozen=True, kw_only=True):
    ref: OrgRef
    member_id: str
    member_type: str
    now: int
    scopes: list[str] | UnsetType = UNSET  # UNSET: the organization's default_member_scopes
    groups: list[str] = []
    user_title: str | None = None
    metadata: dict[str, Any] = {}


class UpdateMember(msgspec.Struct, frozen=True, kw_only=True):
    ref: OrgRef
    member_id: str
    now: int
    scopes: list[str] | UnsetType = UNSET
    groups: list[str] | UnsetType = UNSET
    user_title: str | UnsetType | None = UNSET
    metadata: dict[str, Any] | UnsetType | None = UNSET
    status: str | UnsetType = UNSET
    status_reason: str | None = None
    status_by: str | None = None
    if_match: str | None = None


class RemoveMember(msgspec.Struct, frozen=True, kw_only=True):
    ref: OrgRef
    member_id: str
    now: int
    if_match: str | None = None


class DropDepartedMember(msgspec.Struct, frozen=True, kw_only=True):
    """The member itself is gone (its agent was deleted, platform.md 3.6): its membership goes
    too, if it is still there. Repeatable: a member no longer there, or an organization no longer
    live, decides nothing."""

    org_id: str
    member_id: str
    now: int


class CreateGroup(msgspec.Struct, frozen=True, kw_only=True):
    ref: OrgRef
    group_id: str
    name: str
    now: int
    description: str | None = None
    scopes: list[str] = []
    metadata: dict[str, Any] = {}


class UpdateGroup(msgspec.Struct, frozen=True, kw_only=True):
    ref: OrgRef
    group_id: str
    now: int
    name: str | UnsetType = UNSET
    description: str | UnsetType | None = UNSET
    scopes: list[str] | UnsetType = UNSET
    metadata: dict[str, Any] | UnsetType | None = UNSET
    if_match: str | None = None


class DeleteGroup(msgspec.Struct, frozen=True, kw_only=True):
    ref: OrgRef
    group_id: str
    now: int
    if_match: str | None = None


class AddSsoDomain(msgspec.Struct, frozen=True, kw_only=True):
    """`domain` is already normalised (lower case, no trailing dot)."""

    ref: OrgRef
    domain: str
    now: int
    if_match: str | None = None


class VerifySsoDomain(msgspec.Struct, frozen=True, kw_only=True):
    """`published`: the TXT values the handler found at the domain's challenge name."""

    ref: OrgRef
    domain: str
    published: frozenset[str]
    now: int
    if_match: str | None = None


class RemoveSsoDomain(msgspec.Struct, frozen=True, kw_only=True):
    ref: OrgRef
    domain: str
    now: int
    if_match: str | None = None


class RotateSsoSecret(msgspec.Struct, frozen=True, kw_only=True):
    """The new secret the handler drew, wrapped, and its digest (never the secret)."""

    ref: OrgRef
    secret: SsoSecretChange
    now: int
    if_match: str | None = None


class JoinThroughSso(msgspec.Struct, frozen=True, kw_only=True):
    """An SSO sign-in through the organization (contracts SsoDirectory): it must be active, with
    SSO enabled and `domain` (the asserted address's) among its verified SSO domains; the user
    becomes a member with the default member scopes unless it is one already."""

    ref: OrgRef
    user_id: str
    domain: str
    now: int


class CreateInvitation(msgspec.Struct, frozen=True, kw_only=True):
    """`email_hash`: the invited address's lookup key; `pii`: the address, inviter and message,
    sealed by the handler under the invitation's new data key. `user_id_invited`: the issuer's
    user holding that address, when there is one (the handler looks it up); `token_sha256`: the
    digest of the link's token, minted by the handler."""

    ref: OrgRef
    invitation_id: str
    email_hash: str
    pii: str
    scopes: list[str]
    token_sha256: str
    expires_at: int
    now: int
    user_id_invited: str | None = None
    user_title: str | None = None
    metadata: dict[str, Any] = {}


class UpdateInvitation(msgspec.Struct, frozen=True, kw_only=True):
    """`message` as the PATCH gave it; the handler turns a changed one into `pii`, the new
    sealed snapshot (the decider never sees the clear message)."""

    ref: OrgRef
    invitation_id: str
    now: int
    user_title: str | UnsetType | None = UNSET
    message: str | UnsetType | None = UNSET
    scopes: list[str] | UnsetType = UNSET
    metadata: dict[str, Any] | UnsetType | None = UNSET
    pii: str | None = None
    if_match: str | None = None


class ResendInvitation(msgspec.Struct, frozen=True, kw_only=True):
    """A new link (its token's digest replaces the previous one) sent at `now`."""

    ref: OrgRef
    invitation_id: str
    token_sha256: str
    now: int
    if_match: str | None = None


class RevokeInvitation(msgspec.Struct, frozen=True, kw_only=True):
    ref: OrgRef
    invitation_id: str
    now: int
    if_match: str | None = None


class AnswerInvitation(msgspec.Struct, frozen=True, kw_only=True):
    """The invitee's answer through the link: the digest of the token it presented, and for an
    acceptance the signed-in user and the hash of that user's email address (its username hash
    when the username is an email)."""

    org_id: str
    invitation_id: str
    token_sha256: str
    accept: bool
    now: int
    user_id: str | None = None
    user_email_hash: str | None = None
