"""Personal access token events (platform.md 6.3 `user.personal-token.*`, core-api.md 3.5). They
carry the token's SHA-256 digest and a hint, never the token itself."""

from __future__ import annotations

from typing import Any

from authpi.contracts.base import Event


class PersonalTokenCreated(Event, frozen=True, kw_only=True, tag="user.personal-token.created"):
    id: str
    account_id: str
    issuer_id: str
    user_id: str
    name: str
    description: str | None = None
    tags: list[str] = []
    scopes: list[str] = []
    audience: str | None = None
    expires_at: int | None = None
    metadata: dict[str, Any] = {}
    jti: str
    token_sha256: str
    token_hint: str
    created_at: int


class PersonalTokenUpdated(Event, frozen=True, kw_only=True, tag="user.personal-token.updated"):
    id: str
    user_id: str = ""
    changed: list[str]
    status: str | None = None
    status_reason: str | None = None
    status_by: str | None = None
    updated_at: int


class PersonalTokenDeleted(Event, frozen=True, kw_only=True, tag="user.personal-token.deleted"):
    id: str
    user_id: str = ""
    deleted_at: int


PersonalTokenEvent = PersonalTokenCreated | PersonalTokenUpdated | PersonalTokenDeleted
