"""The OIDC routes of an issuer beside the machine endpoints: /userinfo (GET, POST), /logout
(GET, POST), /check-session.html and /check-session, and DELETE /consents/{client_id}. Each
reads the request, hands it to its protocol endpoint and encodes the answer; errors are RFC 6749
/ RFC 6750 bodies (`error`, `error_description`) with a Bearer challenge on 401, except on
/logout: a browser navigation, whose errors are the portal's HTML error page (400) with the
portal's security headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.params import FromPath, FromQuery

from authpi.observability import get_logger
from authpi.token.api.authorize import error_page, query_values, redirect
from authpi.token.api.cors import add_cors
from authpi.token.api.forms import content_length, read_body, read_form
from authpi.token.api.portal import PortalRoutes
from authpi.token.caches.issuer_keys import IssuerKeys, KeyCache
from authpi.token.endpoints.check_session import (
    CheckSessionEndpoint,
    check_session_page,
    frame_ancestors,
)
from authpi.token.endpoints.consents import ConsentsEndpoint
from authpi.token.endpoints.cors import CorsOrigins
from authpi.token.endpoints.discovery import issuer_url
from authpi.token.endpoints.errors import InvalidRequest, ServerError, UnknownIssuer
from authpi.token.endpoints.flow import COOKIE, ErrorPage
from authpi.token.endpoints.logout import LogoutEndpoint
from authpi.token.endpoints.params import checked_form
from authpi.token.endpoints.userinfo import UserInfoEndpoint
from authpi.web.body import too_deep
from authpi.web.oauth import OAuthError, RawResponse, error_response, json_response
from authpi.web.openapi import BROWSER_PAGES

log = get_logger("authpi.token.api")
_json_object = msgspec.json.Decoder(dict[str, Any])


class OidcEndpoints:
    def __init__(
        self,
        *,
        idp_base: str,
        keys: KeyCache,
        userinfo: UserInfoEndpoint,
        logout: LogoutEndpoint,
        check_session: CheckSessionEndpoint,
        consents: ConsentsEndpoint,
        clients: Any,
        cors: CorsOrigins | None = None,
    ) -> None:
        self.cors = cors  # /userinfo answers the origins of public clients
        self.idp_base = idp_base
        self.keys = keys
        self.userinfo = userinfo
        self.logout = logout
        self.check_session = check_session
        self.consents = consents
        self.clients = clients

    def issuer(self, issuer_id: str) -> IssuerKeys:
        entry = self.keys.get(issuer_id)
        if entry is None or entry.status != "active":
            raise UnknownIssuer()
        return entry

    async def guarded(
        self, issuer_id: str, work: Callable[[IssuerKeys], Awaitable[dict[str, Any]]]
    ) -> RawResponse:
        try:
            return json_response(await work(self.issuer(issuer_id)))
        except OAuthError as exc:
            return error_response(exc, issuer_url(self.idp_base, issuer_id))
        except Exception:
            log.exception("oauth.server_error", issuer_id=issuer_id)
            return error_response(ServerError(), issuer_url(self.idp_base, issuer_id))

    def routes(self, portal: PortalRoutes) -> list[Any]:
        oidc = self

        async def userinfo_answer(request: Request[Any, Any, Any], issuer_id: str) -> RawResponse:
            authorization = request.headers.get("authorization")

            async def work(issuer: IssuerKeys) -> dict[str, Any]:
                post = request.method == "POST"
                form = await read_form(request.scope, request.receive) if post else None
                return await oidc.userinfo.answer(issuer, authorization, form)

            raw = await oidc.guarded(issuer_id, work)
            return raw if oidc.cors is None else add_cors(raw, oidc.cors, request.scope, issuer_id)

        @get("/{issuer_id:str}/userinfo", operation_id="getUserInfo")
        async def userinfo_get(
            request: Request[Any, Any, Any], issuer_id: FromPath[str]
        ) -> RawResponse:
            return await userinfo_answer(request, issuer_id)

        @post("/{issuer_id:str}/userinfo", operation_id="postUserInfo", status_code=200)
        async def userinfo_post(
            request: Request[Any, Any, Any], issuer_id: FromPath[str]
        ) -> RawResponse:
            return await userinfo_answer(request, issuer_id)

        async def logout_answer(request: Request[Any, Any, Any], issuer_id: str) -> Any:
            try:
                issuer = oidc.issuer(issuer_id)
                if request.method == "POST":
                    form = await read_form(request.scope, request.receive)
                else:
                    form = checked_form(query_values(request))
                outcome = await oidc.logout.answer(issuer, form)
            except (ErrorPage, OAuthError) as exc:
                return await portal.problem(
                    issuer_id,
                    title="Sign-out failed",
                    text="We could not sign you out from this link. Return to the application"
                    " and sign out there, or close your browser.",
                    detail=f"{exc.error}: {exc.description}",
                    status=exc.status,
                )
            return redirect(outcome, oidc.idp_base, issuer_id)

        @get("/{issuer_id:str}/logout", operation_id="logout", tags=[BROWSER_PAGES])
        async def logout_get(request: Request[Any, Any, Any], issuer_id: FromPath[str]) -> Any:
            return await logout_answer(request, issuer_id)

        @post(
            "/{issuer_id:str}/logout",
            operation_id="postLogout",
            status_code=302,
            tags=[BROWSER_PAGES],
        )
        async def logout_post(request: Request[Any, Any, Any], issuer_id: FromPath[str]) -> Any:
            return await logout_answer(request, issuer_id)

        @get(
            "/{issuer_id:str}/check-session.html",
            operation_id="checkSessionIframe",
            tags=[BROWSER_PAGES],
        )
        async def check_session_html(
            issuer_id: FromPath[str], client_id: FromQuery[str | None] = None
        ) -> Response[str]:
            try:
                oidc.issuer(issuer_id)
            except OAuthError as exc:
                return error_page(ErrorPage(exc.error, exc.description, exc.status))
            client = oidc.clients.get(client_id) if client_id else None
            ancestors = (
                frame_ancestors([client])
                if client is not None and client.issuer_id == issuer_id
                else "frame-ancestors *"
            )
            return Response(
                check_session_page(issuer_url(oidc.idp_base, issuer_id)),
                media_type="text/html",
                headers={"Content-Security-Policy": ancestors, "Cache-Control": "no-store"},
            )

        @post("/{issuer_id:str}/check-session", operation_id="checkSession", status_code=200)
        async def check_session(
            request: Request[Any, Any, Any], issuer_id: FromPath[str]
        ) -> RawResponse:
            async def work(issuer: IssuerKeys) -> dict[str, Any]:
                body = await read_body(request.receive, content_length(request.scope), 8192)
                if too_deep(body):
                    raise InvalidRequest("the body nests too deeply")
                try:
                    data = _json_object.decode(body)
                except msgspec.DecodeError as exc:
                    raise InvalidRequest("the body must be a JSON object") from exc
                answer = await oidc.check_session.answer(issuer, data, request.cookies.get(COOKIE))
                return dict(answer)

            return await oidc.guarded(issuer_id, work)

        @delete(
            "/{issuer_id:str}/consents/{client_id:str}",
            operation_id="revokeConsent",
            status_code=200,
        )
        async def revoke_consent(
            request: Request[Any, Any, Any], issuer_id: FromPath[str], client_id: FromPath[str]
        ) -> RawResponse:
            authorization = request.headers.get("authorization")

            async def work(issuer: IssuerKeys) -> dict[str, Any]:
                return dict(await oidc.consents.revoke(issuer, client_id, authorization))

            return await oidc.guarded(issuer_id, work)

        return [
            userinfo_get, userinfo_post, logout_get, logout_post, check_session_html,
            check_session, revoke_consent,
        ]  # fmt: skip
