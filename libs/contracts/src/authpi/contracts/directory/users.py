"""User events (platform.md 6.3, 1.7). PII (username, profile, custom fields, addresses) travels
only as ciphertext under the user's own data key (DESIGN.md 7): `pii` is a sealed snapshot of all
of it, so destroying the key makes every copy unreadable. Lookups use `username_hash`.
`UserRegistry` is how another service (the login portal's signup) asks for a new user."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

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


UserEvent = (
    UserCreated
    | UserUpdated
    | UserBlocked
    | UserUnblocked
    | UserDeleted
    | UserApprovalRequested
    | UserApprovalApproved
    | UserApprovalRejected
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
