"""The hosted login portal's routes (idp-api.md 10.3, 12.6), thin: read the request (cookies,
query, a bounded form body), check CSRF on every POST, hand over to authpi.token.portal.flows,
and render what comes back as HTML or a redirect. Paths, all under `/{issuer_id}`: /login,
/signup, /consent, /mfa, /verify-email, /password/forgot, /password/reset, /login-link,
/login-link/callback, /invitation, /signed-out, /error, and the organization SSO sign-in's
/sso/start and /sso/callback. A GET never uses up a mailed login or reset link
(authpi.token.portal.recovery says why and how), nor answers an invitation.

Cookies: `authpi_session` (the op session, idp-api.md 14 #30), `authpi_csrf` (the CSRF double
submit), `authpi_mfa` (a second-factor challenge in progress), `authpi_device` (a trusted
device) and `authpi_sso` (an SSO sign-in's browser binding), all HttpOnly, SameSite=Lax and
path-scoped to the issuer; Secure unless the IdP URL is plain http on a loopback host
(development and tests)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from authpi.observability import get_logger
from authpi.token.api.forms import content_length, parse_form, read_body
from authpi.token.endpoints.errors import InvalidRequest
from authpi.token.endpoints.flow import Device, ErrorPage, FlowGone, cookie_header
from authpi.token.endpoints.sso import PortalOrigin
from authpi.token.endpoints.sso_login import COOKIE as SSO_COOKIE
from authpi.token.endpoints.sso_login import Callback
from authpi.token.portal.common import (
    FLOW_GONE,
    ISSUER_GONE,
    Answer,
    FlowGoneError,
    Page,
    Redirect,
    Visit,
    message,
)
from authpi.token.portal.csrf import COOKIE as CSRF_COOKIE
from authpi.token.portal.csrf import Csrf
from authpi.token.portal.flows import Portal
from authpi.token.portal.pages import Branding, Pages, branding
from authpi.token.portal.second_factor import CHALLENGE_COOKIE, DEVICE_COOKIE
from authpi.token.queries.portal import IssuerRow

log = get_logger("authpi.token.portal")

SESSION_COOKIE = "authpi_session"
MAX_FIELD_CHARS = 4096
# What a page reads from its query: mailed links' tokens, signed-out's client, the second-factor
# page's method, the SSO start's organization and address, and the upstream's answer at the SSO
# callback.
QUERY_FIELDS = frozenset(
    {"token", "client_id", "method", "org", "login_hint", "state", "code", "error", "iss"}
)

Step = Callable[[Visit, IssuerRow, dict[str, str]], Awaitable[Answer]]


class HtmlResponse:
    """A finished response as a bare ASGI app (a page or a redirect), with its cookies."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self, status: int, body: bytes, headers: dict[str, str], cookies: list[str]
    ) -> None:
        self.status = status
        self.body = body
        self.headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
        ] + [(b"set-cookie", c.encode("latin-1")) for c in cookies]

    def response(self) -> Response[bytes]:
        """The same, as a litestar Response, for handlers that answer either this or another
        Response (/authorize, /logout). Only for pages without cookies."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in self.headers}
        return Response(self.body, status_code=self.status, headers=headers)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


class PortalRoutes:
    def __init__(
        self,
        *,
        portal: Portal,
        pages: Pages,
        csrf: Csrf,
        idp_base: str,
        origin: PortalOrigin | None = None,
    ) -> None:
        self.portal = portal
        self.pages = pages
        self.csrf = csrf
        self.idp_base = idp_base
        self.origin = origin  # issues the sign-in page's Authpi-Portal value (SSO discovery)

    def csrf_cookie(self, issuer_id: str, value: str) -> str:
        """Set with the op session cookie's attributes (path, HttpOnly, SameSite, Secure)."""
        session = cookie_header(self.idp_base, issuer_id, value)
        return CSRF_COOKIE + session.removeprefix(SESSION_COOKIE)

    async def serve(
        self, request: Request[Any, Any, Any], issuer_id: str, step: Step, *, form: bool
    ) -> HtmlResponse:
        cookies = request.cookies
        csrf_cookie = cookies.get(CSRF_COOKIE)
        new_cookies: list[str] = []
        if not Csrf.usable(csrf_cookie):
            csrf_cookie = Csrf.new_cookie()
            new_cookies.append(self.csrf_cookie(issuer_id, csrf_cookie))
        assert csrf_cookie is not None
        flow_id = _bounded(request.query_params.get("flow"))
        client = request.scope.get("client")
        visit = Visit(
            issuer_id=issuer_id, flow_id=flow_id,
            session_cookie=_bounded(cookies.get(SESSION_COOKIE)),
            sso_cookie=_bounded(cookies.get(SSO_COOKIE)),
            mfa_cookie=_bounded(cookies.get(CHALLENGE_COOKIE)),
            device_cookie=_bounded(cookies.get(DEVICE_COOKIE)),
            invitation=_bounded(request.query_params.get("invitation")),
            device=Device(
                user_agent=(request.headers.get("user-agent") or "")[:512] or None,
                ip=client[0] if client else None,
            ),
        )  # fmt: skip
        issuer = await self.portal.issuer(issuer_id)
        if issuer is None:
            return self.page(issuer_id, None, ISSUER_GONE, csrf_cookie, new_cookies)
        fields = {k: v for k, v in request.query_params.items() if k in QUERY_FIELDS}
        if form:
            try:
                fields = await _read_portal_form(request)
            except InvalidRequest:
                bad = message("Bad request", "The form could not be read.", 400)
                return self.page(issuer_id, issuer, bad, csrf_cookie, new_cookies)
            if not self.csrf.valid(flow_id or "-", cookies.get(CSRF_COOKIE), fields.get("csrf")):
                log.warning("portal.csrf_refused", issuer_id=issuer_id)
                refused = message(
                    "Request refused",
                    "This form expired or was sent from elsewhere. Nothing was changed.",
                    403,
                    link={"href": _self(request), "label": "Try again"},
                )
                return self.page(issuer_id, issuer, refused, csrf_cookie, new_cookies)
        try:
            answer = await step(visit, issuer, fields)
        except (FlowGoneError, FlowGone):  # expired, or already completed (a replayed POST)
            answer = FLOW_GONE
        except ErrorPage as exc:  # e.g. the client was disabled while the user signed in
            answer = message("Sign-in unavailable", exc.description, exc.status)
        if isinstance(answer, Redirect):
            return self.redirect(issuer_id, answer, new_cookies, 303 if form else 302)
        return self.page(
            issuer_id, issuer, answer, csrf_cookie, new_cookies, flow_id, _self(request)
        )

    def page(
        self,
        issuer_id: str,
        issuer: IssuerRow | None,
        page: Page,
        csrf_cookie: str,
        cookies: list[str],
        flow_id: str | None = None,
        action: str = "",
    ) -> HtmlResponse:
        brand = branding(issuer.name, issuer.settings) if issuer else Branding(name="Sign in")
        context = {
            "csrf": self.csrf.field(flow_id or "-", csrf_cookie),
            "action": action,  # a form posts back to its page's URL, query included
            **page.context,
        }
        if self.origin is not None and page.template == "login.html":
            context["portal_origin"] = self.origin.issue(issuer_id)
        rendered = self.pages.render(page.template, page.status, brand, context)
        headers = {"Content-Type": "text/html; charset=utf-8", **rendered.headers}
        return HtmlResponse(rendered.status, rendered.html.encode(), headers, cookies)

    async def problem(
        self, issuer_id: str, *, title: str, text: str, detail: str | None, status: int
    ) -> Response[bytes]:
        """An error page outside the portal's own routes (/authorize, /logout): the portal's
        message page with the issuer's branding and every header a portal page sends. `detail`
        is the technical reason, in small print; like everything else it is escaped."""
        issuer = await self.portal.issuer(issuer_id)
        page = message(title, text, status, detail=detail)
        csrf_cookie = Csrf.new_cookie()  # the page has no form: nothing is set or checked
        return self.page(issuer_id, issuer, page, csrf_cookie, []).response()

    def redirect(
        self, issuer_id: str, answer: Redirect, cookies: list[str], status: int
    ) -> HtmlResponse:
        if answer.set_session:
            cookies = [*cookies, cookie_header(self.idp_base, issuer_id, answer.set_session)]
        elif answer.clear_session:
            cookies = [*cookies, cookie_header(self.idp_base, issuer_id, None)]
        cookies = [*cookies, *answer.cookies]
        headers = {"Location": answer.location, "Cache-Control": "no-store"}
        return HtmlResponse(status, b"", headers, cookies)

    def routes(self) -> list[Any]:
        p = self.portal
        serve = self.serve

        async def login_form(v: Visit, i: IssuerRow, f: dict[str, str]) -> Answer:
            return await p.login_form(v, i)

        async def login(v: Visit, i: IssuerRow, f: dict[str, str]) -> Answer:
            return await p.login(v, i, f.get("email", ""), f.get("password", ""))

        async def signup_form(v: Visit, i: IssuerRow, f: dict[str, str]) -> Answer:
            return await p.signup_form(v, i)

        async def signup(v: Visit, i: IssuerRow, f: dict[str, str]) -> Answer:
            return await p.signup(
                v, i, f.get("email", ""), f.get("password", ""), f.get("name", "")
            )

        async def consent_form(v: Visit, i: IssuerRow, f: dict[str, str]) -> Answer:
            return await p.consent_form(v, i)

        async def consent(v: Visit, i: IssuerRow, f: dict[str, str]) -> Answer:
            return await p.consent(v, i, f.get("decision", ""))

        async def mfa_form(v: Visit, i: IssuerRow, f: dict[str, str]) -> Answer:
            return await p.mfa_form(v, i, f.get("method", ""))

        async def mfa(v: Visit, i: IssuerRow, f: dict[str, str]) -> Answer:
            return await p.mfa(
                v, i, f.get("code", ""), f.get("kind", "totp"), f.get("trust") == "on"
            )

        async def verify_email(v: Visit, i: IssuerRow, f: dict[str, str]) -> Answer:
            return await p.verify_email(v, i, f.get("token", ""))

        async def forgot_form(v: Visit, i: IssuerRow, f: dict[str, str]) -> Answer:
            return p.email_form(v, kind="forgot")

        async def forgot(v: Visit, i: IssuerRow, f: dict[str, str]) -> Answer:
            return await p.forgot(v, i, f.get("email", ""))

        async def reset_form(v: Visit, i: IssuerRow, f: dict[str, str]) -> Answer:
            return await p.reset_form(v, i, f.get("token", ""))

        async def reset(v: Visit, i: IssuerRow, f: dict[str, str]) -> Answer:
            return await p.reset(v, i, f.get("token", ""), f.get("password", ""))

        async def link_form(v: Visit, i: IssuerRow, f: dict[str, str]) -> Answer:
            return p.email_form(v, kind="login-link")

        async def link_request(v: Visit, i: IssuerRow, f: dict[str, str]) -> Answer:
            return await p.request_login_link(v, i, f.get("email", ""))

        async def link_confirm(v: Visit, i: IssuerRow, f: dict[str, str]) -> Answer:
            return await p.login_link_confirm(v, i, f.get("token", ""))

        async def link_callback(v: Visit, i: IssuerRow, f: dict[str, str]) -> Answer:
            return await p.login_link(v, i, f.get("token", ""))

        async def invitation(v: Visit, i: IssuerRow, f: dict[str, str]) -> Answer:
            return await p.invitation_page(v, i, f.get("token", ""))

        async def invitation_answer(v: Visit, i: IssuerRow, f: dict[str, str]) -> Answer:
            return await p.answer_invitation(v, i, f.get("token", ""), f.get("decision", ""))

        async def signed_out(v: Visit, i: IssuerRow, f: dict[str, str]) -> Answer:
            return p.signed_out(i, f.get("client_id"))

        async def sso_start(v: Visit, i: IssuerRow, f: dict[str, str]) -> Answer:
            return await p.sso_start(v, i, f.get("org", ""), f.get("login_hint", ""))

        async def sso_callback(v: Visit, i: IssuerRow, f: dict[str, str]) -> Answer:
            answer = Callback(
                state=f.get("state"), code=f.get("code"), error=f.get("error"), iss=f.get("iss")
            )
            return await p.sso_callback(v, i, answer)

        async def error(v: Visit, i: IssuerRow, f: dict[str, str]) -> Answer:
            return message(
                "Something went wrong",
                "We could not complete this request. Return to the application you came from"
                " and try again.",
            )

        def pair(path: str, op: str, show: Step, submit: Step | None) -> list[Any]:
            @get(
                f"/{{issuer_id:str}}{path}",
                operation_id=f"portal_{op}_page",
                include_in_schema=False,
            )
            async def page(
                request: Request[Any, Any, Any], issuer_id: FromPath[str]
            ) -> HtmlResponse:
                return await serve(request, issuer_id, show, form=False)

            if submit is None:
                return [page]

            @post(
                f"/{{issuer_id:str}}{path}",
                operation_id=f"portal_{op}_submit",
                include_in_schema=False,
                status_code=200,
            )
            async def send(
                request: Request[Any, Any, Any], issuer_id: FromPath[str]
            ) -> HtmlResponse:
                return await serve(request, issuer_id, submit, form=True)

            return [page, send]

        return [
            *pair("/login", "login", login_form, login),
            *pair("/signup", "signup", signup_form, signup),
            *pair("/consent", "consent", consent_form, consent),
            *pair("/mfa", "mfa", mfa_form, mfa),
            *pair("/verify-email", "verify_email", verify_email, None),
            *pair("/password/forgot", "password_forgot", forgot_form, forgot),
            *pair("/password/reset", "password_reset", reset_form, reset),
            *pair("/login-link", "login_link", link_form, link_request),
            *pair("/login-link/callback", "login_link_callback", link_confirm, link_callback),
            *pair("/invitation", "invitation", invitation, invitation_answer),
            *pair("/signed-out", "signed_out", signed_out, None),
            *pair("/sso/start", "sso_start", sso_start, None),
            *pair("/sso/callback", "sso_callback", sso_callback, None),
            *pair("/error", "error", error, None),
        ]  # fmt: skip


def _self(request: Request[Any, Any, Any]) -> str:
    query = request.scope.get("query_string", b"").decode("latin-1")
    return request.scope["path"] + (f"?{query}" if query else "")


def _bounded(value: str | None) -> str | None:
    if not value or len(value) > 256:
        return None
    return value


async def _read_portal_form(request: Request[Any, Any, Any]) -> dict[str, str]:
    """An urlencoded form body of at most 64 KiB; the first value of each field."""
    media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise InvalidRequest("use a form")
    fields: dict[str, str] = {}
    body = await read_body(request.receive, content_length(request.scope))
    for name, value in parse_form(body):
        if len(value) > MAX_FIELD_CHARS:
            raise InvalidRequest(f"{name} too long")
        fields.setdefault(name, value)
    return fields
