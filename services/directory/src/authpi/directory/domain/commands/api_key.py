"""Commands editing an existing API key (internal; never published): PATCH and DELETE of
core-api.md 3.4. UNSET keeps a field; times are decided by the handler."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.directory.domain.commands.guarded import Guarded, Noted


class UpdateApiKey(Noted, frozen=True, kw_only=True):
    key_id: str
    name: str | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType | None = msgspec.UNSET
    tags: list[str] | msgspec.UnsetType = msgspec.UNSET
    scopes: list[str] | msgspec.UnsetType = msgspec.UNSET
    ip_allowlist: list[str] | msgspec.UnsetType = msgspec.UNSET
    expires_at: int | msgspec.UnsetType | None = msgspec.UNSET
    metadata: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET
    status: str | msgspec.UnsetType = msgspec.UNSET  # "active" | "blocked"


class DeleteApiKey(Guarded, frozen=True, kw_only=True):
    key_id: str


class CreateApiKey(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    account_id: str
    org_id: str
    issuer_id: str | None
    name: str
    secret_sha256: str
    secret_hint: str
    now: int
    description: str | None = None
    tags: list[str] = []
    scopes: list[str] = []
    ip_allowlist: list[str] = []
    expires_at: int | None = None
    metadata: dict[str, Any] = {}


class BlockApiKey(Noted, frozen=True, kw_only=True):
    key_id: str


class UnblockApiKey(Guarded, frozen=True, kw_only=True):
    key_id: str


class RevokeApiKey(Noted, frozen=True, kw_only=True):
    key_id: str


class RotateApiKey(Guarded, frozen=True, kw_only=True):
    key_id: str
    secret_sha256: str
    secret_hint: str
    grace_ms: int = 900_000  # the previous secret stays valid 15 minutes (core-api.md 3.4)
