"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0; idp-api.md 8.1, 14 #24), GET and
POST.

`id_token_hint` is required: an ID token of this issuer whose signature and `iss` hold (an
expired one is accepted). Its `aud` names the client and its `sid` the rp session; the session's
op (SSO) session is revoked with every rp session linked to it (`session.terminated`), and the
op session cookie is cleared. A `post_logout_redirect_uri` must exactly match one of the client's
registered post-logout URIs (no loopback relaxation); it then receives `state`. Without one, the
browser goes to the hosted signed-out page, told the client (`client_id`, the hint's verified
`aud`) so that it can offer the way back to one of that client's registered post-logout URIs.
Front- and back-channel logout are not implemented (discovery says so). Already issued access
tokens live until `exp`."""

from __future__ import annotations

from authpi.contracts.base import Actor, Meta
from authpi.errors import NotFound
from authpi.token.caches.issuer_keys import IssuerKeys
from authpi.token.endpoints.authorize import with_query
from authpi.token.endpoints.errors import InvalidRequest
from authpi.token.endpoints.flow import Known, Outcome
from authpi.token.endpoints.interactions import portal_url
from authpi.token.endpoints.params import Form
from authpi.token.handlers.sessions import Sessions
from authpi.token.queries.sessions import SessionQueries
from authpi.token.reactions.clients import ClientEntry
from authpi.token.signing.verifier import TokenVerifier


class LogoutEndpoint:
    def __init__(
        self,
        *,
        idp_base: str,
        verifier: TokenVerifier,
        clients: Known[ClientEntry],
        sessions: Sessions,
        queries: SessionQueries,
    ) -> None:
        self.idp_base = idp_base
        self.verifier = verifier
        self.clients = clients
        self.sessions = sessions
        self.queries = queries

    async def answer(self, issuer: IssuerKeys, form: Form) -> Outcome:
        hint = form.get("id_token_hint")
        if not hint:
            raise InvalidRequest("id_token_hint is required")
        redirect_uri = form.get("post_logout_redirect_uri")
        state = form.get("state")
        decoded = self.verifier.decode(issuer, hint, expired_ok=True)
        if decoded is None:
            raise InvalidRequest("id_token_hint is not a valid ID token of this issuer")
        header, claims = decoded
        client_id, sid = claims.get("aud"), claims.get("sid")
        if header.get("typ") is not None or "fid" in claims or not isinstance(client_id, str):
            raise InvalidRequest("id_token_hint is not an ID token")
        client = self.clients.get(client_id)
        if client is None or client.issuer_id != issuer.issuer_id:
            raise InvalidRequest("id_token_hint names an unknown client")
        if redirect_uri is not None and redirect_uri not in client.post_logout_redirect_uris:
            raise InvalidRequest("post_logout_redirect_uri is not registered for this client")
        if isinstance(sid, str):
            await self._end(issuer, client, sid, str(claims.get("sub")))
        if redirect_uri is None:
            signed_out = portal_url(self.idp_base, issuer.issuer_id, "signed-out")
            target = with_query(signed_out, {"client_id": client.id})
        else:
            target = with_query(redirect_uri, {"state": state}) if state else redirect_uri
        return Outcome(redirect=target, clear_cookie=True)

    async def _end(self, issuer: IssuerKeys, client: ClientEntry, sid: str, sub: str) -> None:
        rp = await self.queries.session(None, sid)
        if rp is None or rp.issuer_id != issuer.issuer_id or rp.user_id != sub:
            return
        meta = Meta(
            account_id=issuer.account_id,
            issuer_id=issuer.issuer_id,
            actor=Actor(type="user", user_id=sub, client_id=client.id),
            trigger="idp",
            subject={"user_id": sub},
        )
        target = rp.op_session_id or rp.id
        try:
            await self.sessions.revoke(
                issuer.issuer_id, target, reason="logout", by=sub, meta=meta, lenient=True
            )
            if target != rp.id:  # an rp session whose op session ended before
                await self.sessions.revoke(
                    issuer.issuer_id, rp.id, reason="logout", by=sub, meta=meta, lenient=True
                )
        except NotFound:
            return
