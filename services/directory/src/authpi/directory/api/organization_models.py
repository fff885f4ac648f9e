"""Wire Structs of organizations, memberships, groups and organization-level API keys
(core-api-contract.md 5.10, 5.11): request bodies (decoded strictly) and response objects."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

Name = Annotated[str, Meta(min_length=1, max_length=256)]
Text = Annotated[str, Meta(max_length=10_000)]
Url = Annotated[str, Meta(min_length=1, max_length=2048, pattern=r"^https?://\S+$")]
ScopeName = Annotated[str, Meta(min_length=1, max_length=200)]
Scopes = Annotated[list[ScopeName], Meta(max_length=200)]
Id = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]
OrgType = Literal["business", "charity", "public_sector", "default"]
Reason = Annotated[str, Meta(max_length=1000)]
By = Annotated[str, Meta(max_length=200)]
Obj = dict[str, Any]
MaxMembers = Annotated[int, Meta(ge=1, le=10_000_000)]
Millis = Annotated[int, Meta(ge=0, le=2**53)]


class Address(msgspec.Struct, frozen=True, kw_only=True):
    line1: Annotated[str, Meta(max_length=256)] | None = None
    line2: Annotated[str, Meta(max_length=256)] | None = None
    city: Annotated[str, Meta(max_length=256)] | None = None
    state: Annotated[str, Meta(max_length=256)] | None = None
    postal_code: Annotated[str, Meta(max_length=32)] | None = None
    country: Annotated[str, Meta(pattern=r"^[A-Z]{3}$")]  # ISO-3166-1 alpha-3


class SsoBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The `sso` object of a create or PATCH body (domain.org_sso_config says what each field
    means): decoded strictly, so an unknown field or a wrong type is a 422 naming it. The fields
    given are merged into the stored configuration; `client_secret` is write-only and
    `client_secret_set` (read only) is ignored."""

    enabled: bool | UnsetType = UNSET
    sso_only: bool | UnsetType = UNSET
    connection_type: Literal["oidc"] | UnsetType = UNSET
    issuer_url: Annotated[str, Meta(min_length=1, max_length=2048)] | UnsetType | None = UNSET
    client_id: Annotated[str, Meta(min_length=1, max_length=256)] | UnsetType | None = UNSET
    client_secret: Annotated[str, Meta(min_length=1, max_length=1024)] | UnsetType | None = UNSET
    scopes: Annotated[list[ScopeName], Meta(min_length=1, max_length=50)] | UnsetType = UNSET
    token_endpoint_auth_method: (
        Literal["client_secret_basic", "client_secret_post", "none"] | UnsetType
    ) = UNSET
    client_secret_set: bool | UnsetType = UNSET


class CreateOrganizationBody(msgspec.Struct, frozen=True, kw_only=True):
    name: Name
    description: Text | None = None
    logo_url: Url | None = None
    org_type: OrgType = "default"
    max_members: MaxMembers | None = None
    default_member_scopes: Scopes = []
    invitation_enabled: bool = True
    invitation_message: Text | None = None
    address: Address | None = None
    business_details: Obj = {}
    contact: Obj = {}
    social_links: Annotated[list[Obj], Meta(max_length=50)] = []
    scopes: Scopes = []
    security: Obj = {}
    sso: SsoBody = SsoBody()
    custom_fields: Obj = {}
    metadata: Obj = {}
    by_user_id: Id | None = None


class UpdateOrganizationBody(msgspec.Struct, frozen=True, kw_only=True):
    name: Name | UnsetType = UNSET
    description: Text | UnsetType | None = UNSET
    logo_url: Url | UnsetType | None = UNSET
    org_type: OrgType | UnsetType = UNSET
    max_members: MaxMembers | UnsetType | None = UNSET
    default_member_scopes: Scopes | UnsetType = UNSET
    invitation_enabled: bool | UnsetType = UNSET
    invitation_message: Text | UnsetType | None = UNSET
    address: Address | UnsetType | None = UNSET
    business_details: Obj | UnsetType = UNSET
    contact: Obj | UnsetType = UNSET
    social_links: Annotated[list[Obj], Meta(max_length=50)] | UnsetType = UNSET
    scopes: Scopes | UnsetType = UNSET
    security: Obj | UnsetType = UNSET
    sso: SsoBody | UnsetType = UNSET
    custom_fields: Obj | UnsetType | None = UNSET
    metadata: Obj | UnsetType | None = UNSET
    status: Literal["active", "suspended"] | UnsetType = UNSET
    status_reason: Reason | None = None
    status_by: By | None = None


class Organization(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    issuer_id: str
    status: str
    status_at: int | None
    status_reason: str | None
    status_by: str | None
    name: str | None
    description: str | None
    logo_url: str | None
    org_type: str
    max_members: int | None
    default_member_scopes: list[str]
    invitation_enabled: bool
    invitation_message: str | None
    address: Obj | None
    business_details: Obj
    contact: Obj
    social_links: list[Obj]
    scopes: list[str]
    security: Obj
    sso: Obj
    custom_fields: Obj
    stats: Obj
    metadata: Obj
    created_at: int
    updated_at: int | None


class OrganizationListItem(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    issuer_id: str
    name: str | None
    logo_url: str | None
    status: str
    org_type: str
    stats: Obj
    sso: Obj
    security: Obj
    scopes: list[str]
    invitation_enabled: bool
    max_members: int | None
    default_member_scopes: list[str]
    created_at: int
    updated_at: int | None


class AddMemberBody(msgspec.Struct, frozen=True, kw_only=True):
    member_id: Id
    member_type: Literal["user", "agent"] | UnsetType = UNSET
    scopes: Scopes | UnsetType = UNSET
    groups: Annotated[list[Id], Meta(max_length=100)] = []
    user_title: Annotated[str, Meta(max_length=256)] | None = None
    metadata: Obj = {}


class UpdateMemberBody(msgspec.Struct, frozen=True, kw_only=True):
    scopes: Scopes | UnsetType = UNSET
    groups: Annotated[list[Id], Meta(max_length=100)] | UnsetType = UNSET
    user_title: Annotated[str, Meta(max_length=256)] | UnsetType | None = UNSET
    metadata: Obj | UnsetType | None = UNSET
    status: Literal["active", "suspended"] | UnsetType = UNSET
    status_reason: Reason | None = None
    status_by: By | None = None


class Membership(msgspec.Struct, frozen=True, kw_only=True):
    org_id: str
    member_id: str
    member_type: str
    issuer_id: str
    status: str
    status_reason: str | None = None
    status_by: str | None = None
    scopes: list[str]
    groups: list[str]
    user_title: str | None
    metadata: Obj
    joined_at: int
    updated_at: int | None


class CreateGroupBody(msgspec.Struct, frozen=True, kw_only=True):
    name: Name
    description: Text | None = None
    scopes: Scopes = []
    metadata: Obj = {}


class UpdateGroupBody(msgspec.Struct, frozen=True, kw_only=True):
    name: Name | UnsetType = UNSET
    description: Text | UnsetType | None = UNSET
    scopes: Scopes | UnsetType = UNSET
    metadata: Obj | UnsetType | None = UNSET


class Group(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    org_id: str
    issuer_id: str
    name: str
    description: str | None
    scopes: list[str]
    metadata: Obj
    created_at: int
    updated_at: int | None


class KeyRestrictionsBody(msgspec.Struct, frozen=True, kw_only=True):
    # Free-form for organization-level keys: meaningful to the customer (core-api.md 3.4).
    scopes: Scopes = []
    ip_allowlist: Annotated[list[Annotated[str, Meta(max_length=64)]], Meta(max_length=50)] = []


class CreateOrgApiKeyBody(msgspec.Struct, frozen=True, kw_only=True):
    name: Annotated[str, Meta(min_length=1, max_length=100)]
    restrictions: KeyRestrictionsBody
    description: Text | None = None
    tags: Annotated[list[Annotated[str, Meta(max_length=100)]], Meta(max_length=50)] = []
    expires_at: Millis | None = None
    metadata: Obj = {}
    secret: Annotated[str, Meta(min_length=32, max_length=256)] | None = None
    secret_hint: Annotated[str, Meta(min_length=1, max_length=16)] | None = None


class KeySecret(msgspec.Struct, frozen=True):
    algorithm: str
    hint: str


class CreatedOrgApiKey(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str = "api_key"
    org_id: str
    issuer_id: str
    name: str
    description: str | None
    tags: list[str]
    status: str
    status_at: int | None = None
    status_reason: str | None = None
    status_by: str | None = None
    restrictions: Obj
    expires_at: int | None
    secret: KeySecret
    metadata: Obj
    created_at: int
    updated_at: int | None = None
    secret_plain: str


class OrgApiKeyItem(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    org_id: str
    issuer_id: str
    type: str = "api_key"
    status: str
    name: str
    description: str | None
    tags: list[str]
    scopes: list[str]
    ip_allowlist: list[str]
    expires_at: int | None
    secret_hint: str | None
    last_rotated_at: int | None
    status_at: int | None
    created_at: int
    updated_at: int | None


Email = Annotated[str, Meta(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
# core-api.md 3.15 (rec.): an hour to 30 days; 7 days when absent.
ExpiresIn = Annotated[int, Meta(ge=3_600, le=2_592_000)]


class InviterBody(msgspec.Struct, frozen=True, kw_only=True):
    id: Annotated[str, Meta(max_length=200)] | None = None
    name: Annotated[str, Meta(max_length=256)] | None = None


class CreateInvitationBody(msgspec.Struct, frozen=True, kw_only=True):
    email_invited: Email
    scopes: Annotated[list[ScopeName], Meta(min_length=1, max_length=200)]
    user_title: Name | None = None
    message: Text | None = None
    inviter: InviterBody | None = None
    expires_in_seconds: ExpiresIn | None = None
    expires_at: Millis | None = None  # the older reference's absolute expiry (rec.)
    metadata: Obj = {}


class UpdateInvitationBody(msgspec.Struct, frozen=True, kw_only=True):
    user_title: Name | UnsetType | None = UNSET
    message: Text | UnsetType | None = UNSET
    scopes: Annotated[list[ScopeName], Meta(min_length=1, max_length=200)] | UnsetType = UNSET
    metadata: Obj | UnsetType | None = UNSET


class Invitation(msgspec.Struct, frozen=True, kw_only=True):
    """OrganizationInvitationPublic: never the link or its token."""

    id: str
    org_id: str
    issuer_id: str
    status: str
    email_invited: str
    user_id_invited: str | None
    user_title: str | None
    message: str | None
    scopes: list[str]
    inviter: Obj | None
    created_at: int
    expires_at: int
    accepted_at: int | None
    declined_at: int | None
    revoked_at: int | None
    last_email_sent_at: int | None
    metadata: Obj
