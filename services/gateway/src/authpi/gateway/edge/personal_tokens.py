"""Personal access tokens on the Core API (core-api.md 1.2, 3.5: `Authorization: Bearer ptk_…`,
type `personal_token`), checked against the in-memory `caches.personal_tokens` only.

The check: the token's `jti` (read from its claims, unverified) finds the stored token; the
SHA-256 digest of the whole presented token must equal the stored digest (constant time). The
token carries 256 random bits and its signature, so only the token the directory minted has
that digest: no signing key is needed here. Then the token must be active and unexpired (by the
injected clock), and its owner active. Any refusal is 401 `invalid_token` (the SDK refreshes on
401). The principal acts on the token's account with the token's own scopes."""

from __future__ import annotations

import jwt

from authpi.contracts.console import org_of_account
from authpi.crypto.clock import Clock
from authpi.crypto.ids import digest_matches, sha256_hex
from authpi.errors import InvalidToken
from authpi.gateway.caches.personal_tokens import PersonalTokenCache
from authpi.web.principal import Principal

PREFIX = "ptk_"
MAX_TOKEN_LENGTH = 8192
CHALLENGE = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
# Compared against when the token is unknown, so that refusals take the same work.
_NO_TOKEN_DIGEST = sha256_hex("authpi: no such personal token")


class PersonalTokenVerifier:
    """The gateway's `BearerVerifier` for `ptk_` tokens (see the module docstring)."""

    def __init__(self, tokens: PersonalTokenCache, clock: Clock) -> None:
        self.tokens = tokens
        self.clock = clock

    async def verify(self, token: str, client_ip: str | None) -> Principal:
        jti = _token_id(token)
        found = None if jti is None else await self.tokens.lookup(jti)
        if found is None:
            digest_matches(token, _NO_TOKEN_DIGEST)  # the same work as a known token
            raise _refused("not_found" if jti else "invalid")
        if not digest_matches(token, found.token_sha256):
            raise _refused("invalid")
        if found.status != "active":
            raise _refused(found.status)
        if found.expires_at is not None and found.expires_at <= self.clock.now_ms():
            raise _refused("expired")
        if self.tokens.owner_status(found.user_id) != "active":
            raise _refused("suspended")
        return Principal(
            type="personal_token",
            account_id=found.account_id,
            org_id=org_of_account(found.account_id) or "",
            scopes=found.scopes,
            level="account",
            token_id=found.id,
            user_id=found.user_id,
            issuer_id=found.issuer_id,
            ip=client_ip,
        )


def _token_id(token: str) -> str | None:
    """The `jti` claim of a `ptk_<jwt>` value (not verified here: the digest decides)."""
    if not token.startswith(PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        claims = jwt.decode(token.removeprefix(PREFIX), options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    jti = claims.get("jti")
    return jti if isinstance(jti, str) and jti else None


def _refused(reason: str) -> InvalidToken:
    return InvalidToken(
        "the bearer token is not a valid personal token",
        reason=f"personal_token.{reason}",
        headers=dict(CHALLENGE),
    )
