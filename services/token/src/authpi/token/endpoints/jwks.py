"""The issuer's JWK Set (RFC 7517 section 5; idp-api.md 13.2, 13.4): the public JWK of every
published key, encoded once by the key cache, with an ETag so that relying parties revalidate
with If-None-Match (RFC 9110 section 13.1.2) instead of downloading it again."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.token.caches.issuer_keys import KeyCache
from authpi.token.endpoints.discovery import known_issuer

JWKS_CACHE = "public, max-age=600, stale-while-revalidate=86400"


class IssuerJWKS(msgspec.Struct, frozen=True):
    keys: list[dict[str, Any]]


class JwksAnswer(msgspec.Struct, frozen=True, kw_only=True):
    not_modified: bool
    document: bytes  # the encoded JWK Set; empty when not modified
    headers: dict[str, str]


def jwks_answer(cache: KeyCache, issuer_id: str, if_none_match: str | None) -> JwksAnswer:
    """The JWK Set of a known issuer (any status), or NotFound."""
    entry = known_issuer(cache, issuer_id)
    headers = {
        "Cache-Control": JWKS_CACHE,
        "ETag": entry.jwks_etag,
        "Access-Control-Allow-Origin": "*",
    }
    if if_none_match == entry.jwks_etag:
        return JwksAnswer(not_modified=True, document=b"", headers=headers)
    return JwksAnswer(not_modified=False, document=entry.jwks, headers=headers)
