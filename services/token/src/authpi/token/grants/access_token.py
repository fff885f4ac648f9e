"""What every grant hands back (RFC 6749 section 5.1): the token response, and the `jti` of the
access tokens it mints (idp-api.md 11)."""

from __future__ import annotations

import msgspec

from authpi.crypto.ids import base62_secret


class TokenResponse(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    token_type: str
    expires_in: int
    scope: str | msgspec.UnsetType = msgspec.UNSET  # left out when no scope was granted


def new_jti() -> str:
    """18 random base62 characters (13 bytes: 104 bits)."""
    return base62_secret(13)
