"""Commands of the token service's aggregates (internal; never published)."""

from __future__ import annotations

from typing import Any

import msgspec


class CreateSigningKey(msgspec.Struct, frozen=True, kw_only=True):
    kid: str
    issuer_id: str
    account_id: str
    alg: str
    public_jwk: dict[str, Any]
    created_at: int


class RetireSigningKey(msgspec.Struct, frozen=True, kw_only=True):
    reason: str
    retired_at: int


class RevokeToken(msgspec.Struct, frozen=True, kw_only=True):
    """Put a token on the deny-list until it expires (RFC 7009)."""

    jti: str
    issuer_id: str
    client_id: str
    token_type: str
    expires_at: int
    revoked_at: int
