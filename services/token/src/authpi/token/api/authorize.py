"""GET /{issuer_id}/authorize as a litestar route (protocol: authpi.token.endpoints.authorize
checks the request, authpi.token.endpoints.interactions carries it on): reads the query and the
op session cookie, and turns the Outcome into a 302 (with the cookie when a session was opened)
or an ErrorPage into the portal's error page (400, 404) with the issuer's branding and the
portal's security headers. The error page never redirects: it is what an unknown client or an
unregistered redirect URI gets. Never cached."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qsl

from litestar import Request, Response, get
from litestar.params import FromPath

from authpi.observability import get_logger
from authpi.token.api.portal import PortalRoutes
from authpi.token.endpoints.flow import COOKIE, Device, ErrorPage, Outcome, cookie_header
from authpi.token.endpoints.interactions import Interactions
from authpi.web.openapi import BROWSER_PAGES

log = get_logger("authpi.token.api")
MAX_QUERY = 16 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def query_values(request: Request[Any, Any, Any]) -> dict[str, list[str]]:
    raw = request.scope.get("query_string", b"")
    if len(raw) > MAX_QUERY:
        raise ErrorPage("invalid_request", "the request is too large")
    values: dict[str, list[str]] = {}
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=False, max_num_fields=64)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ErrorPage("invalid_request", "the query is not valid") from exc
    for name, value in pairs:
        values.setdefault(name, []).append(value)
    return values


def device_of(request: Request[Any, Any, Any]) -> Device:
    client = request.scope.get("client")
    agent = request.headers.get("user-agent")
    return Device(user_agent=agent[:512] if agent else None, ip=client[0] if client else None)


def redirect(outcome: Outcome, idp_base: str, issuer_id: str) -> Response[bytes]:
    headers = {**NO_STORE, "Location": outcome.redirect}
    if outcome.set_cookie is not None:
        headers["Set-Cookie"] = cookie_header(idp_base, issuer_id, outcome.set_cookie)
    elif outcome.clear_cookie:
        headers["Set-Cookie"] = cookie_header(idp_base, issuer_id, None)
    return Response(b"", status_code=302, headers=headers)


INVALID_LINK = "This sign-in link is not valid for this application"


async def authorize_problem(
    portal: PortalRoutes, issuer_id: str, exc: ErrorPage
) -> Response[bytes]:
    """The person followed a link the application built wrongly (or someone else built): say so
    in words, with the protocol's error code and description in small print."""
    return await portal.problem(
        issuer_id,
        title="Sign-in error",
        text=f"{INVALID_LINK}. Return to the application and try again; if this keeps"
        " happening, contact its support.",
        detail=f"{exc.error}: {exc.description}",
        status=exc.status,
    )


def error_page(exc: ErrorPage) -> Response[str]:
    """A bare error page, for the check-session iframe of an unknown issuer only."""
    body = (
        '<!doctype html><html><head><meta charset="utf-8"><title>Sign-in error</title></head>'
        f"<body><h1>Sign-in error</h1><p><code>{html.escape(exc.error)}</code></p>"
        f"<p>{html.escape(exc.description)}</p></body></html>"
    )
    return Response(body, status_code=exc.status, media_type="text/html", headers=NO_STORE)


def authorize_routes(interactions: Interactions, idp_base: str, portal: PortalRoutes) -> list[Any]:
    @get("/{issuer_id:str}/authorize", operation_id="authorize", tags=[BROWSER_PAGES])
    async def authorize(request: Request[Any, Any, Any], issuer_id: FromPath[str]) -> Response[Any]:
        try:
            outcome = await interactions.authorize(
                issuer_id, query_values(request), request.cookies.get(COOKIE), device_of(request)
            )
        except ErrorPage as exc:
            return await authorize_problem(portal, issuer_id, exc)
        return redirect(outcome, idp_base, issuer_id)

    return [authorize]
