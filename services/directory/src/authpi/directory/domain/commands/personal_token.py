"""Commands of the PersonalToken aggregate (internal; never published). The token itself never
enters a command: only its digest and hint; times and ids are decided by the handler."""

from __future__ import annotations

from typing import Any

import msgspec


class CreatePersonalToken(msgspec.Struct, frozen=True, kw_only=True):
    token_id: str
    account_id: str
    issuer_id: str
    user_id: str
    name: str
    token_sha256: str
    token_hint: str
    now: int
    description: str | None = None
    tags: list[str] = []
    scopes: list[str] = []
    audience: str | None = None
    expires_at: int | None = None
    metadata: dict[str, Any] = {}


class RevokePersonalToken(msgspec.Struct, frozen=True, kw_only=True):
    token_id: str
    account_id: str
    now: int
    status_reason: str | None = None
    status_by: str | None = None
    if_match: str | None = None
    held: frozenset[str] | None = None  # the caller's scopes (domain/grant_subset.py)


class DeletePersonalToken(msgspec.Struct, frozen=True, kw_only=True):
    token_id: str
    account_id: str
    now: int
    if_match: str | None = None
    held: frozenset[str] | None = None  # the caller's scopes (domain/grant_subset.py)
