"""Directory commands (internal; never published). Times and ids are decided by the handler."""

from __future__ import annotations

from typing import Any

import msgspec


class CreateAccount(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    org_id: str
    name: str
    owner_user_id: str | None
    now: int
    metadata: dict[str, Any] = {}


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


class CreateUser(msgspec.Struct, frozen=True, kw_only=True):
    user_id: str
    issuer_id: str
    username_hash: str
    pii: str
    now: int
    method: str = "api"
    region: str = "default"
    store_id: str = "default"
    username_type: str = "email"
    scopes: list[str] = []
    metadata: dict[str, Any] = {}


class BlockApiKey(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    account_id: str
    now: int
    status_reason: str | None = None
    status_by: str | None = None
    if_match: str | None = None
    held: frozenset[str] | None = None  # the caller's scopes (domain/grant_subset.py)


class UnblockApiKey(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    account_id: str
    now: int
    if_match: str | None = None
    held: frozenset[str] | None = None  # the caller's scopes (domain/grant_subset.py)


class RevokeApiKey(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    account_id: str
    now: int
    status_reason: str | None = None
    status_by: str | None = None
    if_match: str | None = None
    held: frozenset[str] | None = None  # the caller's scopes (domain/grant_subset.py)


class RotateApiKey(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    account_id: str
    secret_sha256: str
    secret_hint: str
    now: int
    grace_ms: int = 900_000  # the previous secret stays valid 15 minutes (core-api.md 3.4)
    if_match: str | None = None
    held: frozenset[str] | None = None  # the caller's scopes (domain/grant_subset.py)
