"""Verifying the tokens this service issued (introspection, revocation). A token verifies when
its `kid` is one of the issuer's published keys, the signature holds with that key's algorithm,
`iss` is this issuer's URL and it has not expired by the injected clock."""

from __future__ import annotations

import binascii
from typing import Any

import msgspec

from authpi.crypto.clock import Clock
from authpi.token.caches.issuer_keys import IssuerKeys
from authpi.token.endpoints.discovery import issuer_url
from authpi.token.signing.keys import verify_jwt

CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "sid", "org_id")


class TokenVerifier:
    def __init__(self, idp_base: str, clock: Clock) -> None:
        self.idp_base = idp_base
        self.clock = clock

    def verify(self, issuer: IssuerKeys, token: str) -> dict[str, Any] | None:
        """The token's public claims, or None for anything not a live token of this issuer."""
        decoded = self.decode(issuer, token)
        return None if decoded is None else public_claims(*decoded)

    def decode(
        self, issuer: IssuerKeys, token: str, *, expired_ok: bool = False
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(header, every claim) of a token of this issuer whose signature holds; None when it
        does not verify or, unless `expired_ok` (a logout's id_token_hint), has expired."""
        if len(token) > 8192:
            return None
        try:
            header, claims = verify_jwt(token, issuer.public)
        except (ValueError, TypeError, binascii.Error, msgspec.DecodeError):
            return None
        if claims.get("iss") != issuer_url(self.idp_base, issuer.issuer_id):
            return None
        # Time is checked against the injected clock, not the wall clock.
        if not isinstance(claims.get("exp"), int | float) or "iat" not in claims:
            return None
        if not expired_ok and int(claims["exp"]) <= self.clock.now_ms() // 1000:
            return None
        return header, claims


def public_claims(header: dict[str, Any], claims: dict[str, Any]) -> dict[str, Any]:
    """The claims introspection may show, with the token's type (idp-api.md 14 #21): an access
    token has `typ: at+jwt`, a refresh token a family id, anything else is an ID token."""
    out = {name: claims[name] for name in CLAIMS if name in claims}
    if header.get("typ") == "at+jwt":
        out["token_type"] = "access_token"
    elif "fid" in claims:
        out["token_type"] = "refresh_token"
    else:
        out["token_type"] = "id_token"
    if "organizations" in claims:
        out["organizations"] = claims["organizations"]
    return out
