"""OpenID Connect Session Management 1.0 (idp-api.md 8.2, 8.3): the check-session iframe page and
the session-state check it calls.

The RP posts `"<client_id> <session_state>"` to the iframe; the iframe posts
`{client_id, session_state, origin}` to `/check-session`, which recomputes the state from the op
session cookie (`session_state = BASE64URL(SHA256(client_id origin browser_state salt)).salt`)
and answers `{"valid": true|false}`; the iframe replies `unchanged`, `changed` or `error`. The
origin must be the origin of one of the client's registered redirect URIs (403 otherwise), so a
third-party site cannot probe sessions."""

from __future__ import annotations

import hmac
import json

from authpi.token.caches.issuer_keys import IssuerKeys
from authpi.token.endpoints.errors import InvalidRequest
from authpi.token.endpoints.flow import Known, origin_of, session_state
from authpi.token.endpoints.interactions import Interactions
from authpi.token.reactions.clients import ClientEntry
from authpi.web.oauth import OAuthError

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>check session</title></head><body><script>
(function () {
  var endpoint = %(endpoint)s;
  window.addEventListener("message", function (e) {
    if (typeof e.data !== "string") { return; }
    var parts = e.data.split(" ");
    if (parts.length !== 2) { e.source.postMessage("error", e.origin); return; }
    fetch(endpoint, {
      method: "POST", credentials: "include", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({client_id: parts[0], session_state: parts[1], origin: e.origin})
    }).then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (b) { e.source.postMessage(b.valid ? "unchanged" : "changed", e.origin); })
      .catch(function () { e.source.postMessage("error", e.origin); });
  }, false);
})();
</script></body></html>
"""


class Forbidden(OAuthError):
    def __init__(self, description: str) -> None:
        super().__init__("access_denied", description, status=403)


def check_session_page(issuer_url: str) -> str:
    return PAGE % {"endpoint": json.dumps(f"{issuer_url}/check-session")}


def frame_ancestors(clients: list[ClientEntry]) -> str:
    """CSP frame-ancestors: the origins of the clients' registered redirect URIs."""
    origins = sorted(
        {origin_of(u) for c in clients for u in c.redirect_uris if u.startswith("http")}
    )
    return "frame-ancestors " + (" ".join(origins) if origins else "'none'")


class CheckSessionEndpoint:
    def __init__(self, interactions: Interactions, clients: Known[ClientEntry]) -> None:
        self.interactions = interactions
        self.clients = clients

    async def answer(
        self, issuer: IssuerKeys, body: dict[str, object], cookie: str | None
    ) -> dict[str, bool]:
        client_id, state, origin = (
            body.get("client_id"),
            body.get("session_state"),
            body.get("origin"),
        )
        if not all(isinstance(v, str) and v for v in (client_id, state, origin)):
            raise InvalidRequest("client_id, session_state and origin are required")
        assert isinstance(client_id, str) and isinstance(state, str) and isinstance(origin, str)
        client = self.clients.get(client_id)
        if client is None or client.issuer_id != issuer.issuer_id:
            raise InvalidRequest("unknown client")
        registered = {origin_of(u) for u in client.redirect_uris}
        if origin not in registered:
            raise Forbidden("origin is not registered for this client")
        session = await self.interactions.browser_session(issuer.issuer_id, cookie)
        _, sep, salt = state.rpartition(".")
        if session is None or not sep or not salt:
            return {"valid": False}
        # The redirect URI only contributes its origin, which is the one checked above.
        expected = session_state(client_id, origin + "/", session.browser_state, salt)
        return {"valid": hmac.compare_digest(expected, state)}
