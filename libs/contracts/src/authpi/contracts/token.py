"""Events owned by the token service: the SigningKey aggregate (idp-api.md 13). They carry the
key id, algorithm and public JWK only; the private key never enters an event (it is kept wrapped
by the KEK in the token service's own key table). The credential and sign-in events of the hosted
portal live in `contracts.credentials`, second factors and trusted devices in `contracts.mfa`;
both are part of the token service's union here."""

from __future__ import annotations

from typing import Any

from authpi.contracts.base import Event
from authpi.contracts.credentials import AttemptEvent, CredentialEvent
from authpi.contracts.mfa import MfaEvent
from authpi.contracts.sessions import SessionsEvent


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


class AccessTokenRevoked(Event, frozen=True, kw_only=True, tag="access-token.revoked"):
    """A client revoked one of its tokens (RFC 7009). Introspection reports the `jti` inactive
    until the token would have expired anyway. Internal to the token service: the spec's
    catalogue has no revocation event for single tokens, so it is never delivered to webhooks."""

    jti: str
    issuer_id: str
    client_id: str
    token_type: str  # access_token | refresh_token
    expires_at: int  # Unix ms; the deny-list entry is useless after it
    revoked_at: int


SigningKeyEvent = SigningKeyCreated | SigningKeyRetired
# Human login's events live in contracts.sessions (sessions, refresh families, consents) and
# contracts.credentials (passwords, mailed links, sign-in attempts), second factors and trusted
# devices in contracts.mfa.
TokenEvent = (
    SigningKeyEvent | AccessTokenRevoked | SessionsEvent | CredentialEvent | AttemptEvent | MfaEvent
)
