"""Account and API-key events (platform.md 6.3). API keys carry digests and hints, never secrets."""

from __future__ import annotations

from typing import Any

from authpi.contracts.base import Event
from authpi.contracts.directory.domains import DomainSnapshot


class AccountCreated(Event, frozen=True, kw_only=True, tag="account.created"):
    id: str
    org_id: str
    name: str
    owner_user_id: str | None
    metadata: dict[str, Any] = {}
    created_at: int


class AccountUpdated(Event, frozen=True, kw_only=True, tag="account.updated"):
    id: str
    changed: list[str]
    name: str | None = None
    description: str | None = None
    logo_url: str | None = None
    owner_user_id: str | None = None
    metadata: dict[str, Any] = {}
    updated_at: int
    # Every domain after the change, when `changed` names "domains" (verified, primary flag).
    domains: list[DomainSnapshot] | None = None


class ApiKeyCreated(Event, frozen=True, kw_only=True, tag="api-key.created"):
    id: str
    account_id: str
    org_id: str
    issuer_id: str | None
    name: str
    description: str | None = None
    tags: list[str] = []
    scopes: list[str] = []
    ip_allowlist: list[str] = []
    expires_at: int | None = None
    metadata: dict[str, Any] = {}
    # SHA-256 hex digest of the secret and its last characters; never the secret itself.
    secret_sha256: str
    secret_hint: str
    created_at: int


class ApiKeyUpdated(Event, frozen=True, kw_only=True, tag="api-key.updated"):
    id: str
    changed: list[str]
    name: str | None = None
    description: str | None = None
    tags: list[str] | None = None
    scopes: list[str] | None = None
    ip_allowlist: list[str] | None = None
    expires_at: int | None = None
    metadata: dict[str, Any] | None = None
    status: str | None = None
    status_reason: str | None = None
    status_by: str | None = None
    # On rotation: the new digest, and until when the previous one still authenticates.
    secret_sha256: str | None = None
    secret_hint: str | None = None
    previous_valid_until: int | None = None
    updated_at: int


class ApiKeyBlocked(Event, frozen=True, kw_only=True, tag="api-key.blocked"):
    id: str
    status: str = "blocked"
    status_reason: str | None = None
    status_by: str | None = None
    status_at: int


class ApiKeyUnblocked(Event, frozen=True, kw_only=True, tag="api-key.unblocked"):
    id: str
    status: str = "active"
    status_reason: str | None = None
    status_by: str | None = None
    status_at: int


class ApiKeyDeleted(Event, frozen=True, kw_only=True, tag="api-key.deleted"):
    id: str
    deleted_at: int


AccountEvent = AccountCreated | AccountUpdated
ApiKeyEvent = ApiKeyCreated | ApiKeyUpdated | ApiKeyBlocked | ApiKeyUnblocked | ApiKeyDeleted
