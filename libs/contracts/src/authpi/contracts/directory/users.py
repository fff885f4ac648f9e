"""User events (platform.md 6.3, 1.7). PII (username, profile, custom fields, addresses) travels
only as ciphertext under the user's own data key (DESIGN.md 7): `pii` is a sealed snapshot of all
of it, so destroying the key makes every copy unreadable. Lookups use `username_hash`."""

from __future__ import annotations

from typing import Any

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


UserEvent = UserCreated | UserUpdated | UserBlocked | UserUnblocked | UserDeleted
