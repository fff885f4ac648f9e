"""Commands of the PersonalToken aggregate (internal; never published). The token itself never
enters a command: only its digest and hint; times and ids are decided by the handler."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.directory.domain.commands.guarded import Guarded, Noted


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


class RevokePersonalToken(Noted, frozen=True, kw_only=True):
    token_id: str


class DeletePersonalToken(Guarded, frozen=True, kw_only=True):
    token_id: str
