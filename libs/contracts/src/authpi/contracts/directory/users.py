"""User events (platform.md 6.3, 1.7). PII (username, profile, custom fields, addresses) travels
only as ciphertext under the user's own data key (DESIGN.md 7): `pii` is a sealed snapshot of all
of it, so destroying the key makes every copy unreadable. Lookups use `username_hash`.
`UserRegistry` is how another service (the login portal's signup) asks for a new user."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import msgspec

from authpi.contracts.base import Event


class UserCreated(Event, frozen=True, kw_only=True, tag="user.created"):
    id: str
    issuer_id: str
    username_hash: str
    # AES-GCM ciphertext (base64) of the user's PII under its per-user data key (DESIGN.md 7).
    pii: str
    status: str = "active"
    method: str = "api"
    region: str = "default"
    store_id: str = "default"
    created_at: int
    username_type: str = "email"
    scopes: list[str] = []
    metadata: dict[str, Any] = {}


class UserUpdated(Event, frozen=True, kw_only=True, tag="user.updated"):
    """What changed; `pii` is the complete new sealed snapshot when any PII field changed."""

    id: str
    issuer_id: str
    changed: list[str]
    pii: str | None = None
    username_hash: str | None = None
    username_type: str | None = None
    scopes: list[str] | None = None
    metadata: dict[str, Any] | None = None
    updated_at: int


class UserBlocked(Event, frozen=True, kw_only=True, tag="user.blocked"):
    """Status moved from `active` to `suspended` or `disabled` (platform.md 1.7)."""

    id: str
    issuer_id: str = ""
    status: str
    status_reason: str | None = None
    status_by: str | None = None
    status_at: int


class UserUnblocked(Event, frozen=True, kw_only=True, tag="user.unblocked"):
    id: str
    issuer_id: str = ""
    status: str = "active"
    status_reason: str | None = None
    status_by: str | None = None
    status_at: int


class UserDeleted(Event, frozen=True, kw_only=True, tag="user.deleted"):
    """Soft delete; the user's data key is destroyed in the same transaction (crypto-shredding)."""

    id: str
    deleted_at: int
    issuer_id: str = ""


class UserApprovalRequested(Event, frozen=True, kw_only=True, tag="user.approval.requested"):
    """A signup the issuer holds for an administrator's decision (core-api.md 3.10): the user
    was created `pending_approval` in the same commit and cannot sign in yet. `approval` is the
    user's approval record: `{"status": "pending", "requested_at"}`."""

    id: str
    issuer_id: str
    approval: dict[str, Any]
    requested_at: int


class UserApprovalApproved(Event, frozen=True, kw_only=True, tag="user.approval.approved"):
    """An administrator approved a held signup. The status change itself travels as the
    `user.unblocked` committed with it, which every follower of user statuses already applies;
    `approval` is the record with `status: approved`, `decided_at`, `decided_by`."""

    id: str
    issuer_id: str
    approval: dict[str, Any]
    status: str = "active"
    status_reason: str | None = None
    status_by: str | None = None
    status_at: int


class UserApprovalRejected(Event, frozen=True, kw_only=True, tag="user.approval.rejected"):
    """An administrator rejected a held signup: the user becomes `blocked` (the `user.blocked`
    committed with it) and never signs in unless an administrator later activates it."""

    id: str
    issuer_id: str
    approval: dict[str, Any]
    status: str = "blocked"
    status_reason: str | None = None
    status_by: str | None = None
    status_at: int


class UserSsoProvisioned(Event, frozen=True, kw_only=True, tag="user.sso.provisioned"):
    """The user was created just in time by an organization's SSO (platform.md 6.3), in the same
    commit as its `user.created` (method `sso`): the identity the organization's upstream IdP
    asserted is linked to it from the start. `external_issuer` and `external_subject` are the
    upstream's `iss` and `sub` (pseudonymous identifiers, not the address)."""

    id: str
    issuer_id: str
    org_id: str
    protocol: str = "oidc"
    external_issuer: str
    external_subject: str
    provisioned_at: int


class UserSsoLinked(Event, frozen=True, kw_only=True, tag="user.sso.linked"):
    """An identity of an organization's upstream IdP was linked to an existing user holding the
    same address (platform.md 6.3): the first SSO sign-in of that identity. Later sign-ins of a
    linked identity decide nothing here."""

    id: str
    issuer_id: str
    org_id: str
    protocol: str = "oidc"
    external_issuer: str
    external_subject: str
    linked_at: int


UserEvent = (
    UserCreated
    | UserUpdated
    | UserBlocked
    | UserUnblocked
    | UserDeleted
    | UserApprovalRequested
    | UserApprovalApproved
    | UserApprovalRejected
    | UserSsoProvisioned
    | UserSsoLinked
)


@runtime_checkable
class UserRegistry(Protocol):
    """Signup (idp-api.md 12.6): a command on the directory's User aggregate that the token
    service's login portal calls. The directory implements it (its `user_registry` export); the
    platform host wires it into the token service, in-process in the all-in-one topology."""

    async def register(
        self,
        *,
        account_id: str,
        issuer_id: str,
        username_type: str,
        username: str,
        profile: dict[str, Any],
        method: str = "signup",
    ) -> str:
        """Create a user (`user.created` with `method`) and return its id once the event is
        committed: active, or `pending_approval` (with `user.approval.requested`) when the
        issuer's signup mode (settings.access.mode) is `approval`, so it cannot sign in until an
        administrator approves it. Raises authpi.errors.Conflict (reason `user.username`) when the
        issuer already has that username, Unprocessable for a username its type refuses and
        NotFound for an issuer the account does not have."""
        ...


class SsoIdentity(msgspec.Struct, frozen=True, kw_only=True):
    """Who an organization's upstream IdP says signed in (its ID token, checked by the caller):
    the upstream's issuer and subject, the address (lower case) and the profile claims kept for
    a user created just in time."""

    protocol: str = "oidc"
    external_issuer: str
    external_subject: str
    email: str
    profile: dict[str, Any] = {}


class SsoSignIn(msgspec.Struct, frozen=True, kw_only=True):
    """The directory's answer: the user, and whether this sign-in created it (`provisioned`),
    linked the identity to it (`linked`) or made it a member of the organization (`joined`)."""

    user_id: str
    provisioned: bool = False
    linked: bool = False
    joined: bool = False


@runtime_checkable
class SsoDirectory(Protocol):
    """Organization SSO sign-in (core-api.md 3.16, platform.md 6.3 `user.sso.*`): after the token
    service checked an upstream ID token, the directory, which owns users and memberships, finds
    the issuer's user holding the asserted address or creates it just in time, links the
    upstream identity, and makes the user a member of the organization, in one commit. The
    directory implements it (its `sso_directory` export); the platform host wires it into the
    token service, in-process like `UserRegistry`."""

    async def sign_in(
        self, *, account_id: str, issuer_id: str, org_id: str, identity: SsoIdentity
    ) -> SsoSignIn:
        """Raises authpi.errors.NotFound for an organization that is gone, and Conflict when the
        organization is suspended, has SSO disabled or the address's domain is not one of its
        verified SSO domains. A blocked user is still found (its sign-in is refused by the
        caller, which checks every user's status)."""
        ...
