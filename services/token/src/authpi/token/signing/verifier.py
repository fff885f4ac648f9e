"""Verifying the tokens this service issued (introspection, revocation). A token verifies when
its `kid` is one of the issuer's published keys, the signature holds with that key's algorithm,
`iss` is this issuer's URL and it has not expired by the injected clock.

Introspection verifies the same tokens again and again (a resource server asks about the bearer
token of each call it serves), so `decode_cached` keeps the outcome of a successful check: an LRU
of the exact token string -> (issuer, the key that verified it, header, claims), bounded by
`VERIFIED_CACHE_SIZE` entries. A hit is taken only while that very key is still published for the
issuer (a rotated-out or removed key, or a reloaded issuer, makes it a miss and a full check);
the expiry is checked on every call, as revocation and client checks are by the caller. Only
tokens whose signature held are kept, so garbage cannot fill it with anything but evictions."""

from __future__ import annotations

import binascii
from collections import OrderedDict
from typing import Any

import msgspec

from authpi.crypto.clock import Clock
from authpi.token.caches.issuer_keys import IssuerKeys
from authpi.token.endpoints.discovery import issuer_url
from authpi.token.signing.keys import ParsedJwt, parse_jwt, signature_holds

VERIFIED_CACHE_SIZE = 10_000  # entries of a few KiB each: tens of MiB at most
CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "sid", "org_id")


class TokenVerifier:
    def __init__(self, idp_base: str, clock: Clock, cache_size: int = VERIFIED_CACHE_SIZE) -> None:
        self.idp_base = idp_base
        self.clock = clock
        self.cache_size = cache_size
        self._verified: OrderedDict[str, Verified] = OrderedDict()  # token -> its entry
        self.hits = 0
        self.misses = 0

    def verify(self, issuer: IssuerKeys, token: str) -> dict[str, Any] | None:
        """The token's public claims, or None for anything not a live token of this issuer."""
        decoded = self.decode(issuer, token)
        return None if decoded is None else public_claims(*decoded)

    def decode(
        self, issuer: IssuerKeys, token: str, *, expired_ok: bool = False
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(header, every claim) of a token of this issuer whose signature holds; None when it
        does not verify or, unless `expired_ok` (a logout's id_token_hint), has expired."""
        parsed = self.parse(issuer, token, expired_ok=expired_ok)
        if parsed is None or not signature_holds(parsed):
            return None
        return parsed.header, parsed.claims

    def parse(
        self, issuer: IssuerKeys, token: str, *, expired_ok: bool = False
    ) -> ParsedJwt | None:
        """`decode` but for the signature, which the caller must establish before it trusts
        any claim: by `signature_holds`, or by finding that the token is exactly one this
        service issued and recorded (the refresh grant compares its SHA-256 with the digest its
        family holds)."""
        if len(token) > 8192:
            return None
        try:
            parsed = parse_jwt(token, issuer.public)
        except (ValueError, TypeError, binascii.Error, msgspec.DecodeError):
            return None
        claims = parsed.claims
        if claims.get("iss") != issuer_url(self.idp_base, issuer.issuer_id):
            return None
        # Time is checked against the injected clock, not the wall clock.
        if not isinstance(claims.get("exp"), int | float) or "iat" not in claims:
            return None
        if not expired_ok and int(claims["exp"]) <= self.clock.now_ms() // 1000:
            return None
        return parsed

    def decode_cached(
        self, issuer: IssuerKeys, token: str
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """`decode`, remembering the tokens that verified (module docstring). The dicts returned
        are shared with the cache: read them, never change them."""
        entry = self.verified(issuer, token)
        return None if entry is None else (entry.header, entry.claims)

    def verified(self, issuer: IssuerKeys, token: str) -> Verified | None:
        """The cache entry of a live token of this issuer whose signature holds, checked in
        full on a miss (module docstring); None as `decode` would refuse it."""
        entry = self._verified.get(token)
        if entry is not None:
            if entry.issuer_id == issuer.issuer_id and issuer.public.get(entry.kid) is entry.key:
                self._verified.move_to_end(token)
                self.hits += 1
                return None if entry.exp <= self.clock.now_ms() // 1000 else entry
            del self._verified[token]
        self.misses += 1
        decoded = self.decode(issuer, token)
        if decoded is None:
            return None
        kid = str(decoded[0].get("kid"))
        entry = Verified(issuer.issuer_id, kid, issuer.public.get(kid), *decoded)
        self._verified[token] = entry
        if len(self._verified) > self.cache_size:
            self._verified.popitem(last=False)
        return entry


class Verified:
    """A token whose signature held, as the cache keeps it: the issuer and the key object that
    verified it, its header and claims, its public claims, and room for the caller's encoded
    answer (introspection's, which depends on nothing else while the token is live)."""

    __slots__ = ("answer", "claims", "exp", "header", "issuer_id", "key", "kid", "public")

    def __init__(
        self, issuer_id: str, kid: str, key: Any, header: dict[str, Any], claims: dict[str, Any]
    ) -> None:
        self.issuer_id = issuer_id
        self.kid = kid
        self.key = key
        self.header = header
        self.claims = claims
        self.exp = int(claims["exp"])
        self.public = public_claims(header, claims)
        self.answer: bytes | None = None


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
