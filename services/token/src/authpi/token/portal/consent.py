"""The consent page (idp-api.md 12.6) and the signed-out page: what a browser with an op
session, or one that just ended it, is shown."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.token.portal.common import (
    FLOW_GONE,
    Answer,
    Page,
    PortalBase,
    Redirect,
    Visit,
    links,
    message,
)
from authpi.token.queries.portal import IssuerRow


class ConsentFlows(PortalBase):
    async def consent_form(self, visit: Visit, issuer: IssuerRow) -> Answer:
        flow = await self.flow(visit)
        if flow is None:
            return FLOW_GONE
        session = await self.interactions.browser_session(issuer.id, visit.session_cookie)
        if session is None:
            return Redirect(location=links(issuer.id, visit.flow_id)["login"])
        return Page(
            template="consent.html",
            context={
                "title": "Allow access", "client_name": flow.client_name,
                "scopes": list(flow.scopes), "error": None, "notice": None,
                "account": await self._address_of(session.user_id),
            },
        )  # fmt: skip

    async def consent(self, visit: Visit, issuer: IssuerRow, decision: str) -> Answer:
        flow = await self.flow(visit)
        if flow is None:
            return FLOW_GONE
        session = await self.interactions.browser_session(issuer.id, visit.session_cookie)
        if session is None:
            return Redirect(location=links(issuer.id, visit.flow_id)["login"])
        if decision == "switch":  # "Not you?": end this browser's session, sign in afresh
            await self.sessions.revoke(
                issuer.id, session.id, reason="logout", by=session.user_id,
                meta=self._meta(issuer, visit, session.user_id), lenient=True,
            )  # fmt: skip
            return Redirect(location=links(issuer.id, visit.flow_id)["login"], clear_session=True)
        outcome = await self.interactions.consented(
            flow, user_id=session.user_id, granted=decision == "allow",
            cookie=visit.session_cookie,
        )  # fmt: skip
        return Redirect(
            location=outcome.redirect,
            set_session=outcome.set_cookie,
            clear_session=outcome.clear_cookie,
        )

    def signed_out(self, issuer: IssuerRow, client_id: str | None) -> Page:
        """The page after a logout without a post_logout_redirect_uri. `client_id` is the client
        the logout's ID token was issued to; the way back to it is only ever one of its
        registered post-logout URIs, never a URL from the request."""
        page = message(
            "You are signed out", "You can close this window, or sign in again.",
            link={"href": links(issuer.id, None)["login"], "label": "Sign in again"},
        )  # fmt: skip
        client = self._client(issuer.id, client_id)
        if client is None or not client.post_logout_redirect_uris:
            return page
        name = client.name or "the application"
        back = {"href": client.post_logout_redirect_uris[0], "label": f"Return to {name}"}
        return msgspec.structs.replace(
            page,
            context={
                **page.context,
                "message": f"You are signed out of {name}. You can close this window.",
                "link": back,
                "secondary": {"href": links(issuer.id, None)["login"], "label": "Sign in again"},
            },
        )

    def _client(self, issuer_id: str, client_id: str | None) -> Any:
        if not client_id or len(client_id) > 256:
            return None
        client = self.interactions.clients.get(client_id)
        if client is None or client.issuer_id != issuer_id or client.status != "active":
            return None
        return client
