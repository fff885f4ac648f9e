"""CORS of the IdP endpoints a browser application calls itself (idp-api.md 14 #31).

`/token`, `/revoke` and `/userinfo` allow the origins of the registered redirect URIs of the
issuer's active public clients: an SPA signs in with a redirect back to its own origin, then
calls these from that origin. The answer names that one origin (never `*`), with
`Vary: Origin`, and no credentials (these endpoints take a form or a Bearer token, never a
cookie). Discovery and JWKS allow `*` (they are public documents). `/authorize` and `/logout`
are navigations and never answer CORS.

Only a request with an `Origin` header pays for any of this. The allowed origins of each issuer
are an index over the client cache, rebuilt when the cache has changed since (its
`generation`), so a cross-origin request costs a dict lookup."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol
from urllib.parse import urlsplit

from authpi.token.reactions.clients import ClientEntry

ALLOW_HEADERS = "Authorization, Content-Type"
MAX_AGE = "600"
# Documents anyone may read from any origin.
PUBLIC = {"Access-Control-Allow-Origin": "*"}


class ClientCache(Protocol):
    generation: int

    def entries(self) -> Iterable[ClientEntry]: ...


def web_origin(uri: str) -> str | None:
    """The origin a browser sends for pages at `uri` (RFC 6454), or None for a URI no browser
    page has (a native app's private-use scheme, no host)."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


class CorsOrigins:
    def __init__(self, clients: ClientCache) -> None:
        self._clients = clients
        self._generation = -1
        self._by_issuer: dict[str, frozenset[str]] = {}

    def allowed(self, issuer_id: str, origin: str) -> bool:
        if self._generation != self._clients.generation:
            self._rebuild()
        allowed = self._by_issuer.get(issuer_id)
        return allowed is not None and origin in allowed

    def _rebuild(self) -> None:
        generation = self._clients.generation
        index: dict[str, set[str]] = {}
        for client in self._clients.entries():
            if client.confidential or client.status != "active":
                continue
            for uri in client.redirect_uris:
                origin = web_origin(uri)
                if origin is not None:
                    index.setdefault(client.issuer_id, set()).add(origin)
        self._by_issuer = {issuer: frozenset(origins) for issuer, origins in index.items()}
        self._generation = generation

    def response_headers(self, issuer_id: str, origin: str | None) -> dict[str, str]:
        """Headers for an actual request's answer: none without an allowed Origin."""
        if origin is None or not self.allowed(issuer_id, origin):
            return {}
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}

    def preflight(
        self, issuer_id: str, origin: str | None, method: str | None, methods: str
    ) -> tuple[int, dict[str, str]]:
        """(status, headers) of an OPTIONS preflight for an endpoint taking `methods`."""
        if (
            origin is None
            or method is None
            or method.upper() not in methods.split(", ")
            or not self.allowed(issuer_id, origin)
        ):
            return 403, {"Vary": "Origin"}
        return 204, {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": methods,
            "Access-Control-Allow-Headers": ALLOW_HEADERS,
            "Access-Control-Max-Age": MAX_AGE,
            "Vary": "Origin",
        }
