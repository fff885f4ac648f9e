"""Events owned by the token service: the SigningKey aggregate (idp-api.md 13). They carry the
key id, algorithm and public JWK only; the private key never enters an event (it is kept wrapped
by the KEK in the token service's own key table)."""

from __future__ import annotations

from typing import Any

from authpi.contracts.base import Event


class SigningKeyCreated(Event, frozen=True, kw_only=True, tag="signing-key.created"):
    kid: str
    issuer_id: str
    account_id: str
    alg: str  # ES256 | EdDSA | RS256
    public_jwk: dict[str, Any]
    created_at: int


class SigningKeyRetired(Event, frozen=True, kw_only=True, tag="signing-key.retired"):
    """The key left the JWKS (older than the 45-day overlap, or its issuer was deleted)."""

    kid: str
    issuer_id: str
    account_id: str
    reason: str = "rotated"  # rotated | issuer_deleted
    retired_at: int


SigningKeyEvent = SigningKeyCreated | SigningKeyRetired
TokenEvent = SigningKeyEvent
