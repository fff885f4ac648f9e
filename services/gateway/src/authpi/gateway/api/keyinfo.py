"""`GET /{issuer_id}/keyinfo` on the IdP port (idp-api.md 10.1, open point 19): an API key proves
itself with its own credentials (HTTP Basic `key_id:secret`) and gets its public key object back,
never its secret. Checked against the gateway's in-memory key cache, by the same rules as the
Core API (authn.py): SHA-256 digests in constant time, the previous secret of a rotated key
during its grace, the IP allowlist.

Refusals, in the IdP's RFC 6749 form `{error, error_description}` (never the Core API envelope):
- missing, malformed or wrong credentials, an unknown key, and any key that is not active
  (blocked, revoked, expired, or of an organization that is suspended or deleted) -> 401
  `unauthorized_client` with a Basic challenge;
- a key of another issuer than the path's (an organization-level key of another customer
  issuer, or an account-level key, which belongs to AuthPI's own issuer, at a customer issuer's
  path) -> the same 401 as an unknown key, with the same work done: the answer reveals nothing
  about keys elsewhere, or whether the issuer exists;
- a source IP outside the key's allowlist -> 403 `access_denied`, as on the Core API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request, get
from litestar.params import FromPath

from authpi.crypto.clock import Clock
from authpi.errors import AccessDenied, Unauthorized
from authpi.gateway.caches.api_keys import ApiKeyCache, CachedKey
from authpi.gateway.edge.authn import (
    OrganizationStatus,
    check_organization,
    check_source_ip,
    parse_basic,
    verify_key,
)
from authpi.gateway.edge.layers import client_ip
from authpi.observability import get_logger
from authpi.web.oauth import OAuthError, RawResponse, error_response, json_response

log = get_logger("authpi.gateway.keyinfo")


def key_object(key: CachedKey) -> dict[str, Any]:
    """The public key object (idp-api.md 10.1)."""
    return {
        "id": key.id,
        "type": "api_key",
        "org_id": key.org_id,
        "name": key.name,
        "status": key.status,
        "restrictions": {"scopes": sorted(key.scopes)},
        "expires_at": key.expires_at,
        "created_at": key.created_at,
    }


class KeyInfo:
    def __init__(
        self,
        keys: ApiKeyCache,
        clock: Clock,
        idp_url: str,
        organizations: OrganizationStatus,
        verified: Callable[[CachedKey, int], None] | None = None,
    ) -> None:
        self.verified = verified  # told of every successful check (metering)
        self.keys = keys
        self.organizations = organizations
        self.clock = clock
        self.idp_url = idp_url.rstrip("/")

    async def answer(
        self, issuer_id: str, authorization: str | None, ip: str | None
    ) -> dict[str, Any]:
        scheme, _, value = (authorization or "").strip().partition(" ")
        if scheme.lower() != "basic":
            raise _unauthorized("an API key's HTTP Basic credentials are required")
        try:
            key_id, secret = parse_basic(value.strip())
            found = await self.keys.lookup(key_id)
            if found is not None and found.issuer_id != issuer_id:
                found = None  # refused exactly as an unknown key
            now = self.clock.now_ms()
            key = verify_key(found, secret, now)
            check_organization(key, self.organizations)
            check_source_ip(key, ip)
        except Unauthorized as exc:
            raise _unauthorized(exc.description) from None
        except AccessDenied as exc:
            raise OAuthError("access_denied", exc.description, status=403) from None
        if self.verified is not None:
            self.verified(key, now)
        return key_object(key)

    def routes(self) -> list[Any]:
        info = self

        @get(
            "/{issuer_id:str}/keyinfo",
            operation_id="getApiKeyInfo",
            summary="Get API Key Info",
        )
        async def keyinfo(request: Request[Any, Any, Any], issuer_id: FromPath[str]) -> RawResponse:
            realm = f"{info.idp_url}/{issuer_id}"
            try:
                body = await info.answer(
                    issuer_id, request.headers.get("authorization"), client_ip(request.scope)
                )
                return json_response(body)
            except OAuthError as exc:
                return error_response(exc, realm)
            except Exception:
                log.exception("keyinfo.server_error", issuer_id=issuer_id)
                return error_response(
                    OAuthError("server_error", "unexpected error", status=500), realm
                )

        return [keyinfo]


def _unauthorized(description: str) -> OAuthError:
    return OAuthError("unauthorized_client", description, status=401, basic=True)
