"""Commands editing an existing API key (internal; never published): PATCH and DELETE of
core-api.md 3.4. UNSET keeps a field; times are decided by the handler."""

from __future__ import annotations

from typing import Any

import msgspec


class UpdateApiKey(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    account_id: str
    now: int
    name: str | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType | None = msgspec.UNSET
    tags: list[str] | msgspec.UnsetType = msgspec.UNSET
    scopes: list[str] | msgspec.UnsetType = msgspec.UNSET
    ip_allowlist: list[str] | msgspec.UnsetType = msgspec.UNSET
    expires_at: int | msgspec.UnsetType | None = msgspec.UNSET
    metadata: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET
    status: str | msgspec.UnsetType = msgspec.UNSET  # "active" | "blocked"
    status_reason: str | None = None
    status_by: str | None = None
    if_match: str | None = None
    held: frozenset[str] | None = None  # the caller's scopes (domain/grant_subset.py)


class DeleteApiKey(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    account_id: str
    now: int
    if_match: str | None = None
    held: frozenset[str] | None = None  # the caller's scopes (domain/grant_subset.py)
