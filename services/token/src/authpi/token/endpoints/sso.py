"""SSO discovery: `GET /{issuer_id}/sso/discover?email=` (idp-api.md 10.2, 12.6, 14 #20).

Portal-authenticated only. The request carries an `Authpi-Portal` header holding a portal-origin
token: `<expiry in Unix seconds>.<HMAC-SHA256>` over the issuer id and that expiry, keyed by
`kek.derive("portal-origin")`. The portal's pages issue it (the login page carries one), so it is
bound to one issuer and short-lived; anything else is a 401 in the OAuth error shape.

The answer depends only on the address's domain, never on whether a user holds the address:
`{"sso": true, org_id, connection_type, redirect_url}` when an active organization of the issuer
has SSO enabled and a verified SSO domain equal to that domain, `{"sso": false}` otherwise. Only
domains the directory verified count (`organization.sso.domain-verified`); a domain merely
written into an organization's `sso` object routes nothing. When several organizations verified
the same domain, the first to verify it wins. `redirect_url` names the issuer's SSO start,
`/{issuer_id}/sso/start?org=<org id>`."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Protocol
from urllib.parse import urlencode

from authpi.crypto.clock import Clock
from authpi.crypto.envelope import b64d, b64e
from authpi.token.endpoints.discovery import issuer_url
from authpi.token.endpoints.errors import InvalidRequest
from authpi.web.oauth import OAuthError

ORIGIN_TTL_S = 3600  # as long as a sign-in page may stay open
MAX_EMAIL = 320
DEFAULT_CONNECTION = "oidc"


class PortalOrigin:
    """Portal-origin tokens: issued by the portal's pages, checked by portal-only endpoints."""

    def __init__(self, key: bytes, clock: Clock, ttl_s: int = ORIGIN_TTL_S) -> None:
        self._key = key
        self._clock = clock
        self._ttl_s = ttl_s

    def _mac(self, issuer_id: str, expires: int) -> bytes:
        return hmac.new(self._key, f"{issuer_id}\n{expires}".encode(), hashlib.sha256).digest()

    def issue(self, issuer_id: str) -> str:
        expires = self._clock.now_ms() // 1000 + self._ttl_s
        return f"{expires}.{b64e(self._mac(issuer_id, expires))}"

    def valid(self, issuer_id: str, token: str | None) -> bool:
        if not token or len(token) > 100:
            return False
        raw_expires, _, raw_mac = token.partition(".")
        if not raw_expires.isdigit() or len(raw_expires) > 12:
            return False
        expires = int(raw_expires)
        if expires <= self._clock.now_ms() // 1000:
            return False
        try:
            mac = b64d(raw_mac)
        except ValueError:
            return False
        return hmac.compare_digest(mac, self._mac(issuer_id, expires))


class NotFromPortal(OAuthError):
    def __init__(self) -> None:
        super().__init__(
            "unauthorized_client",
            "this endpoint answers the hosted login portal only (Authpi-Portal header)",
            status=401,
        )


class SsoRoute(Protocol):
    org_id: str
    connection_type: str | None


class SsoLookup(Protocol):
    async def route(self, issuer_id: str, domain: str) -> SsoRoute | None: ...


def email_domain(email: str) -> str | None:
    """The domain of an address as discovery compares it, or None when it has none."""
    local, at, domain = email.strip().rpartition("@")
    domain = domain.rstrip(".").lower()
    if not at or not local or not domain or any(c.isspace() for c in domain):
        return None
    return domain


class SsoDiscoveryEndpoint:
    def __init__(self, idp_base: str, origin: PortalOrigin, lookup: SsoLookup) -> None:
        self.idp_base = idp_base
        self.origin = origin
        self.lookup = lookup

    async def discover(
        self, issuer_id: str, header: str | None, email: str | None
    ) -> dict[str, Any]:
        if not self.origin.valid(issuer_id, header):
            raise NotFromPortal()
        if not email:
            raise InvalidRequest("email is required")
        if len(email) > MAX_EMAIL:
            raise InvalidRequest("email is too long")
        domain = email_domain(email)
        if domain is None:
            raise InvalidRequest("email is not an email address")
        route = await self.lookup.route(issuer_id, domain)
        if route is None:
            return {"sso": False}
        start = issuer_url(self.idp_base, issuer_id) + "/sso/start?"
        return {
            "sso": True,
            "org_id": route.org_id,
            "connection_type": route.connection_type or DEFAULT_CONNECTION,
            "redirect_url": start + urlencode({"org": route.org_id}),
        }
