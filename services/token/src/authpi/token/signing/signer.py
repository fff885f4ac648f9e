"""Signing tokens with an issuer's current key, from memory (the token endpoint's hot path).
Every token's lifetime is capped at 21 days (idp-api.md 11.7) so it expires while its key is
still published."""

from __future__ import annotations

from typing import Any

from authpi.crypto.clock import Clock
from authpi.errors import NotFound
from authpi.token.caches.issuer_keys import KeyCache
from authpi.token.domain.rotation import MAX_TOKEN_TTL_S
from authpi.token.signing.keys import sign_jwt


class TokenLifetimeTooLong(ValueError):
    pass


class TokenSigner:
    def __init__(self, cache: KeyCache, clock: Clock) -> None:
        self.cache = cache
        self.clock = clock

    def sign(
        self,
        issuer_id: str,
        claims: dict[str, Any],
        *,
        alg: str | None = None,
        typ: str | None = None,
    ) -> str:
        """A JWT signed by the newest key of `alg` (the issuer's default when None)."""
        entry = self.cache.get(issuer_id)
        if entry is None:
            raise NotFound("unknown issuer", reason="token.unknown_issuer")
        signer = entry.signers.get(alg or entry.default_alg)
        if signer is None:
            raise NotFound("no signing key for that algorithm", reason="token.no_signing_key")
        if "exp" in claims:
            issued = int(claims.get("iat", self.clock.now_ms() // 1000))
            if int(claims["exp"]) - issued > MAX_TOKEN_TTL_S:
                raise TokenLifetimeTooLong("token lifetime above the 21-day cap")
        return sign_jwt(signer.key, signer.kid, signer.alg, claims, typ)
