"""Client commands (internal; never published). Secrets arrive as digests; PATCH fields left out
are `UNSET` and the settings patch is merged in `decide`, against the folded state."""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType


class CreateClient(msgspec.Struct, frozen=True, kw_only=True):
    client_id: str
    issuer_id: str
    name: str
    type: str
    now: int
    description: str | None = None
    logo_url: str | None = None
    status: str = "active"
    settings: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    secret_sha256: str | None = None
    secret_hint: str | None = None


class UpdateClient(msgspec.Struct, frozen=True, kw_only=True):
    client_id: str
    issuer_id: str
    now: int
    if_match: str | None = None
    name: str | UnsetType = UNSET
    type: str | UnsetType = UNSET
    description: str | UnsetType | None = UNSET
    logo_url: str | UnsetType | None = UNSET
    status: str | UnsetType = UNSET
    status_reason: str | None = None
    status_by: str | None = None
    settings: dict[str, Any] | UnsetType | None = UNSET
    metadata: dict[str, Any] | UnsetType | None = UNSET


class DeleteClient(msgspec.Struct, frozen=True, kw_only=True):
    client_id: str
    issuer_id: str
    now: int
    if_match: str | None = None


class RotateClientSecret(msgspec.Struct, frozen=True, kw_only=True):
    client_id: str
    issuer_id: str
    secret_sha256: str
    secret_hint: str
    now: int
    grace_ms: int = 900_000  # the previous secret stays valid 15 minutes (core-api.md 3.8)
    if_match: str | None = None
