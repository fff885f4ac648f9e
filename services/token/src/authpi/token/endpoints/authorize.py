"""The authorization endpoint (RFC 6749 section 4.1; idp-api.md 4, 12.1, 12.2) and the
continuation of an authorization after the hosted login portal (`Interactions`).

`GET /{issuer_id}/authorize` is validated in the order of idp-api.md 4.2: an unknown issuer is a
404, an unknown or inactive client and a missing or unregistered `redirect_uri` are an error page
(never a redirect: the URI is not trusted yet); every later error is a redirect to the client's
`redirect_uri` with `error`, `error_description` and `state`. Only `response_type=code`, only
PKCE `S256` (required for public clients, `plain` refused), exact redirect URI matching with the
RFC 8252 loopback port relaxation.

A valid request becomes a login flow (ephemeral table `login_flows`, 30 minutes): with no usable
op session the browser goes to the portal's `/{issuer_id}/login?flow=<id>`; the portal
authenticates the user and calls `Interactions.authenticated`, which opens (or reuses) the op
session and either sends the browser to the consent page or back to the client with a code.

This module is framework-free: the api/ layer (authpi.token.api.authorize) turns an `Outcome` or
an `ErrorPage` into HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar
from urllib.parse import urlencode, urlsplit

import msgspec

from authpi.contracts.base import Actor, Meta
from authpi.contracts.sessions import Device as SessionDevice
from authpi.crypto.clock import Clock
from authpi.crypto.ids import base62_secret
from authpi.token.caches.issuer_keys import IssuerKeys
from authpi.token.endpoints.discovery import BASE_SCOPES, issuer_url
from authpi.token.endpoints.errors import InvalidRequest
from authpi.token.endpoints.params import Form
from authpi.token.grants.codes import CodeGrant, Codes, Flows
from authpi.token.grants.id_token import PeopleReader
from authpi.token.handlers.consents import Consents
from authpi.token.handlers.sessions import Sessions, cookie_digest, split_cookie
from authpi.token.queries.sessions import SessionQueries
from authpi.token.reactions.clients import ClientEntry

T_co = TypeVar("T_co", covariant=True)

FLOW_TTL_S = 1800
MAX_STATE = 2048
MAX_NONCE = 512
PROMPTS = frozenset({"none", "login", "consent", "select_account"})
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_ORG = re.compile(r"org_[0-9a-z]{1,64}")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "[::1]", "localhost"})


class Device(msgspec.Struct, frozen=True, kw_only=True):
    user_agent: str | None = None
    ip: str | None = None


class Flow(msgspec.Struct, frozen=True, kw_only=True):
    """A validated authorization request, waiting for the user (login, consent)."""

    id: str
    issuer_id: str
    client_id: str
    client_name: str
    redirect_uri: str
    scopes: list[str]
    state: str | None
    nonce: str | None
    code_challenge: str | None
    prompt: list[str]
    max_age: int | None
    org: str | None
    resources: list[str]
    login_hint: str | None
    expires_at: int  # Unix ms
    # RFC 6749 4.1.3: /token must repeat redirect_uri only when /authorize named it.
    redirect_uri_given: bool = True


class OpSession(msgspec.Struct, frozen=True, kw_only=True):
    """The browser's op (SSO) session, as the authorization needs it."""

    id: str
    issuer_id: str
    account_id: str
    user_id: str
    auth_time: int  # Unix ms of the user's authentication
    auth_method: str
    browser_state: str  # the op browser state of OIDC Session Management (session_state)
    expires_at: int


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """Where the browser goes next, and what happens to the op session cookie."""

    redirect: str
    set_cookie: str | None = None  # a new `authpi_session` value
    clear_cookie: bool = False


class FlowGone(Exception):
    """The flow is unknown, expired or already completed."""


class ErrorPage(Exception):
    """An authorization error that must not redirect (idp-api.md 4.2 steps 1-3)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


class RedirectError(Exception):
    """An authorization error delivered to the client's redirect URI (idp-api.md 4.2)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


# ---------------------------------------------------------------------------------------------
# Validation (pure)


class Request(msgspec.Struct, frozen=True, kw_only=True):
    """What /authorize validated, before it becomes a flow."""

    redirect_uri: str
    scopes: list[str]
    state: str | None
    nonce: str | None
    code_challenge: str | None
    prompt: list[str]
    max_age: int | None
    org: str | None
    resources: list[str]
    login_hint: str | None
    redirect_uri_given: bool = True


def redirect_uri_matches(registered: tuple[str, ...] | list[str], presented: str) -> bool:
    """Exact match, or RFC 8252 section 7.3: a registered loopback URI without a port matches
    the same URI with any port (idp-api.md 12.2)."""
    if presented in registered:
        return True
    parts = urlsplit(presented)
    if parts.scheme != "http" or parts.hostname is None or parts.port is None:
        return False
    host = parts.netloc.rsplit(":", 1)[0]
    if host not in _LOOPBACK_HOSTS:
        return False
    portless = parts._replace(netloc=host).geturl()
    return portless in registered


def usable_redirect_uri(uri: str) -> bool:
    """idp-api.md 12.2: no fragment, whitespace, control characters, backslash or userinfo."""
    if not uri or len(uri) > 2048 or "#" in uri or "\\" in uri:
        return False
    if any(c.isspace() or not c.isprintable() for c in uri):
        return False
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return False
    return bool(parts.scheme) and "@" not in parts.netloc and "*" not in parts.netloc


def client_and_redirect(
    issuer_id: str, form: Form, lookup: Callable[[str], ClientEntry | None]
) -> tuple[ClientEntry, str]:
    """Steps 2 and 3 of idp-api.md 4.2: errors here are pages, never redirects."""
    try:
        client_id = form.get("client_id")
        presented = form.get("redirect_uri")
    except InvalidRequest as exc:
        raise ErrorPage("invalid_request", exc.description) from exc
    if not client_id:
        raise ErrorPage("invalid_request", "client_id is required")
    client = lookup(client_id)
    if client is None or client.issuer_id != issuer_id or client.status != "active":
        raise ErrorPage("invalid_client", "unknown client")
    if presented is None:
        if len(client.redirect_uris) != 1:
            raise ErrorPage("invalid_request", "redirect_uri is required")
        return client, client.redirect_uris[0]
    if not usable_redirect_uri(presented) or not redirect_uri_matches(
        client.redirect_uris, presented
    ):
        raise ErrorPage("invalid_request", "redirect_uri is not registered for this client")
    return client, presented


def validate(issuer: IssuerKeys, client: ClientEntry, redirect_uri: str, form: Form) -> Request:
    """Steps 4 to 9 of idp-api.md 4.2 (step 9 only syntactically: membership is checked after
    login); every failure is a RedirectError."""
    try:
        return _validate(issuer, client, redirect_uri, form)
    except InvalidRequest as exc:  # a repeated parameter, read by form.get
        raise RedirectError("invalid_request", exc.description) from exc


def _validate(issuer: IssuerKeys, client: ClientEntry, redirect_uri: str, form: Form) -> Request:
    response_type = form.get("response_type")
    if response_type != "code" or (client.response_types and "code" not in client.response_types):
        raise RedirectError("unsupported_response_type", "response_type must be code")
    if form.get("response_mode") not in (None, "query"):
        raise RedirectError("invalid_request", "only response_mode=query is supported")
    if "authorization_code" not in client.grant_types:
        raise RedirectError(
            "unauthorized_client", "the authorization_code grant is not enabled for this client"
        )
    challenge, method = form.get("code_challenge"), form.get("code_challenge_method")
    if challenge is None and not client.confidential:
        raise RedirectError("invalid_request", "code_challenge is required (PKCE S256)")
    if method is not None and method != "S256":
        raise RedirectError("invalid_request", "code_challenge_method must be S256")
    if challenge is not None:
        if method is None:  # RFC 7636 4.3: no method means plain, which is refused
            raise RedirectError("invalid_request", "code_challenge_method must be S256")
        if not _CHALLENGE.fullmatch(challenge):
            raise RedirectError("invalid_request", "code_challenge must be 43 base64url chars")
    scopes = _scopes(issuer, client, form.get("scope"))
    org = form.get("org")
    if org is not None and not _ORG.fullmatch(org):
        raise RedirectError("access_denied", "org is not a valid organization id")
    if org is not None and client.organizations.mode == "none":
        raise RedirectError("access_denied", "this client issues no organization tokens")
    state, nonce = form.get("state"), form.get("nonce")
    if state is not None and len(state) > MAX_STATE:
        raise RedirectError("invalid_request", "state is too long")
    if nonce is not None and len(nonce) > MAX_NONCE:
        raise RedirectError("invalid_request", "nonce is too long")
    return Request(
        redirect_uri=redirect_uri,
        scopes=scopes,
        state=state,
        nonce=nonce,
        code_challenge=challenge,
        prompt=_prompt(form.get("prompt")),
        max_age=_max_age(form.get("max_age")),
        org=org,
        resources=_resources(client, form.all("resource")),
        login_hint=form.get("login_hint"),
        redirect_uri_given=form.get("redirect_uri") is not None,
    )


def allowed_scopes(issuer: IssuerKeys, client: ClientEntry) -> list[str]:
    """The client's scopes; a client that lists none may ask for the standard OIDC scopes and
    the issuer's. `offline_access` is always accepted, as a no-op (idp-api.md 14 #8)."""
    base = list(client.scopes) or [*BASE_SCOPES, *issuer.available_scopes]
    return [*base, "offline_access"] if "offline_access" not in base else base


def _scopes(issuer: IssuerKeys, client: ClientEntry, raw: str | None) -> list[str]:
    allowed = allowed_scopes(issuer, client)
    if raw is None:
        return [s for s in allowed if s != "offline_access"] if client.scopes else ["openid"]
    wanted = list(dict.fromkeys(raw.split()))
    if len(wanted) > 256:
        raise RedirectError("invalid_scope", "too many scopes")
    permitted = set(allowed)
    extra = [s for s in wanted if s not in permitted]
    if extra:
        raise RedirectError("invalid_scope", f"scope not allowed for this client: {extra[0]}")
    return wanted


def _prompt(raw: str | None) -> list[str]:
    if raw is None:
        return []
    values = list(dict.fromkeys(raw.split()))
    if any(v not in PROMPTS for v in values):
        raise RedirectError("invalid_request", "unknown prompt value")
    if "none" in values and len(values) > 1:
        raise RedirectError("invalid_request", "prompt=none cannot be combined with others")
    return values


def _max_age(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 10:
        raise RedirectError("invalid_request", "max_age must be a non-negative integer")
    return int(raw)


def _resources(client: ClientEntry, resources: list[str]) -> list[str]:
    out: list[str] = []
    for resource in resources:
        parts = urlsplit(resource)
        if not parts.scheme or not parts.netloc or parts.fragment or len(resource) > 2048:
            raise RedirectError("invalid_target", "resource must be an absolute URI")
        if client.audiences and resource not in client.audiences:
            raise RedirectError("invalid_target", "resource not allowed for this client")
        if resource not in out:
            out.append(resource)
    return out


def error_redirect(redirect_uri: str, error: str, description: str, state: str | None) -> str:
    params = {"error": error, "error_description": description}
    if state is not None:
        params["state"] = state
    return with_query(redirect_uri, params)


def with_query(uri: str, params: dict[str, str]) -> str:
    """`uri` with `params` appended to its query (a registered URI may have one)."""
    sep = "&" if urlsplit(uri).query else "?"
    return f"{uri}{sep}{urlencode(params)}"


def portal_url(idp_base: str, issuer_id: str, page: str, flow_id: str | None = None) -> str:
    url = f"{issuer_url(idp_base, issuer_id)}/{page}"
    return f"{url}?{urlencode({'flow': flow_id})}" if flow_id else url


def needs_login(
    session: OpSession | None, prompt: list[str], max_age: int | None, now: int
) -> bool:
    """Whether the user must authenticate (again): no session, prompt=login, or a max_age the
    session's authentication is older than (OIDC Core 3.1.2.1)."""
    if session is None or "login" in prompt:
        return True
    return max_age is not None and now - session.auth_time > max_age * 1000


def access_requires_verified_email(access: object) -> bool:
    """An issuer's settings.access.require_verified_email: false when absent; a value that is not
    a boolean requires verification (a malformed setting fails closed)."""
    value = access.get("require_verified_email") if isinstance(access, Mapping) else None
    if value is None or isinstance(value, bool):
        return bool(value)
    return True


def new_flow_id() -> str:
    return f"flw_{base62_secret(16)}"


def session_state(client_id: str, redirect_uri: str, browser_state: str, salt: str) -> str:
    """OIDC Session Management 1.0 section 3 (idp-api.md 8.3)."""
    origin = origin_of(redirect_uri)
    digest = hashlib.sha256(f"{client_id} {origin} {browser_state} {salt}".encode()).digest()
    return f"{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}.{salt}"


def origin_of(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def cookie_header(idp_base: str, issuer_id: str, value: str | None) -> str:
    """The Set-Cookie value of the op session cookie (idp-api.md 12.6, 14 #30): HttpOnly,
    SameSite=Lax, scoped to the issuer's path, Secure unless the IdP is plain http on a loopback
    host (development). `None` clears it."""
    base = urlsplit(idp_base)
    path = f"{base.path.rstrip('/')}/{issuer_id}"
    attrs = f"Path={path}; HttpOnly; SameSite=Lax"
    if not (base.scheme == "http" and base.hostname in ("127.0.0.1", "localhost", "::1")):
        attrs += "; Secure"
    if value is None:
        return f"{COOKIE}=; {attrs}; Max-Age=0"
    return f"{COOKIE}={value}; {attrs}"


COOKIE = "authpi_session"


class Interactions:
    """The authorization's continuation, for /authorize itself and the hosted portal."""

    def __init__(
        self,
        *,
        idp_base: str,
        clock: Clock,
        issuers: Known[IssuerKeys],
        clients: Known[ClientEntry],
        flows: Flows,
        codes: Codes,
        sessions: Sessions,
        queries: SessionQueries,
        consents: Consents,
        people: PeopleReader,
    ) -> None:
        self.idp_base = idp_base
        self.clock = clock
        self.issuers = issuers
        self.clients = clients
        self.flows = flows
        self.codes = codes
        self.sessions = sessions
        self.queries = queries
        self.consents = consents
        self.people = people

    # -- /authorize -----------------------------------------------------------------------

    def issuer(self, issuer_id: str) -> IssuerKeys:
        issuer = self.issuers.get(issuer_id)
        if issuer is None or issuer.status != "active":
            raise ErrorPage("not_found", "unknown issuer", status=404)
        return issuer

    async def authorize(
        self, issuer_id: str, values: dict[str, list[str]], cookie: str | None, device: Device
    ) -> Outcome:
        """GET /{issuer_id}/authorize: an Outcome (a redirect) or ErrorPage."""
        issuer = self.issuer(issuer_id)
        form = Form(values)
        client, redirect_uri = client_and_redirect(issuer_id, form, self.clients.get)
        state = _state(form)
        try:
            if any(not v.isprintable() for vals in values.values() for v in vals):
                raise RedirectError("invalid_request", "a parameter has control characters")
            req = validate(issuer, client, redirect_uri, form)
        except RedirectError as exc:
            return Outcome(redirect=error_redirect(redirect_uri, exc.error, exc.description, state))
        now = self.clock.now_ms()
        flow = Flow(
            id=new_flow_id(),
            issuer_id=issuer_id,
            client_id=client.id,
            client_name=client.name or client.id,
            expires_at=now + FLOW_TTL_S * 1000,
            **msgspec.structs.asdict(req),
        )
        session = await self.browser_session(issuer_id, cookie)
        if session is not None and not await self._address_ok(issuer_id, session.user_id):
            # An op session opened before the issuer required a verified address: it does not
            # carry the user past that requirement. The portal's sign-in asks for the address
            # to be verified (and mails the link) before it continues the authorization.
            if "none" in flow.prompt:
                return self._error(flow, "login_required", "the user must verify their email")
            session = None
        if "none" in flow.prompt:
            if session is None or needs_login(session, [], flow.max_age, now):
                return self._error(flow, "login_required", "the user is not signed in")
            return await self._proceed(flow, client, session, interactive=False, saved=False)
        if needs_login(session, flow.prompt, flow.max_age, now) or session is None:
            await self.flows.save(flow.id, issuer_id, flow, flow.expires_at)
            return Outcome(redirect=portal_url(self.idp_base, issuer_id, "login", flow.id))
        # prompt=select_account: one account per browser here, so there is nothing to choose
        # (idp-api.md 14 #32).
        return await self._proceed(flow, client, session, interactive=True, saved=False)

    # -- the portal's calls ---------------------------------------------------------------

    async def flow(self, issuer_id: str, flow_id: str) -> Flow:
        raw = await self.flows.load(flow_id, issuer_id, self.clock.now_ms())
        if raw is None:
            raise FlowGone(flow_id)
        return _flow.decode(raw)

    async def browser_session(self, issuer_id: str, cookie: str | None) -> OpSession | None:
        """The browser's op session when its cookie names a usable one of this issuer."""
        parsed = split_cookie(cookie)
        if parsed is None:
            return None
        session_id, secret = parsed
        row = await self.queries.session(None, session_id)
        if (
            row is None
            or row.type != "op"
            or row.issuer_id != issuer_id
            or row.cookie_sha256 is None
            or not hmac.compare_digest(row.cookie_sha256, cookie_digest(secret))
            or not row.usable(self.clock.now_ms())
        ):
            return None
        return OpSession(
            id=row.id,
            issuer_id=row.issuer_id,
            account_id=row.account_id,
            user_id=row.user_id,
            auth_time=row.auth_time,
            auth_method=row.auth_method,
            browser_state=row.cookie_sha256,
            expires_at=row.expires_at,
        )

    async def authenticated(
        self, flow: Flow, *, user_id: str, method: str, device: Device, cookie: str | None
    ) -> Outcome:
        """The portal authenticated `user_id` for `flow`: open (or reuse, unless prompt=login or
        max_age asks for a fresh authentication) the op session, then consent or the code."""
        issuer = self.issuer(flow.issuer_id)
        client = self._client(flow)
        session, set_cookie = await self._op_session(
            issuer,
            user_id,
            method,
            device,
            cookie,
            fresh="login" in flow.prompt or flow.max_age is not None,
        )
        outcome = await self._proceed(flow, client, session, interactive=True, saved=True)
        return msgspec.structs.replace(outcome, set_cookie=set_cookie)

    async def consented(
        self, flow: Flow, *, user_id: str, granted: bool, cookie: str | None
    ) -> Outcome:
        """The user's answer on the consent page; a refusal is `access_denied`."""
        session = await self.browser_session(flow.issuer_id, cookie)
        if session is None or session.user_id != user_id:
            return Outcome(redirect=portal_url(self.idp_base, flow.issuer_id, "login", flow.id))
        if not granted:
            if not await self.flows.finish(flow.id, flow.issuer_id):
                raise FlowGone(flow.id)
            return self._error(flow, "access_denied", "the user denied the request")
        issuer = self.issuer(flow.issuer_id)
        await self.consents.grant(
            issuer_id=flow.issuer_id,
            user_id=user_id,
            client_id=flow.client_id,
            scopes=flow.scopes,
            meta=_user_meta(issuer, user_id),
        )
        return await self._code(flow, session, saved=True)

    def consent_needed(self, flow: Flow, consented: set[str]) -> bool:
        return "consent" in flow.prompt or not set(flow.scopes) <= consented

    async def login_without_flow(
        self, issuer_id: str, *, user_id: str, method: str, device: Device, cookie: str | None
    ) -> Outcome:
        """A sign-in with no authorization behind it (e.g. a login link): the op session only;
        the browser goes to the portal's login page, which shows the signed-in state."""
        issuer = self.issuer(issuer_id)
        _, set_cookie = await self._op_session(issuer, user_id, method, device, cookie, fresh=False)
        return Outcome(
            redirect=portal_url(self.idp_base, issuer_id, "login"), set_cookie=set_cookie
        )

    # -- internals ------------------------------------------------------------------------

    def _client(self, flow: Flow) -> ClientEntry:
        client = self.clients.get(flow.client_id)
        if client is None or client.status != "active" or client.issuer_id != flow.issuer_id:
            raise ErrorPage("invalid_client", "the client is no longer available")
        return client

    async def _op_session(
        self,
        issuer: IssuerKeys,
        user_id: str,
        method: str,
        device: Device,
        cookie: str | None,
        *,
        fresh: bool,
    ) -> tuple[OpSession, str | None]:
        current = await self.browser_session(issuer.issuer_id, cookie)
        if current is not None and current.user_id == user_id and not fresh:
            return current, None
        session_id, value, expires_at = await self.sessions.open_op(
            issuer_id=issuer.issuer_id,
            account_id=issuer.account_id,
            user_id=user_id,
            method=method,
            device=SessionDevice(user_agent=device.user_agent, ip=device.ip),
            meta=_user_meta(issuer, user_id, device),
        )
        now = self.clock.now_ms()
        session = OpSession(
            id=session_id,
            issuer_id=issuer.issuer_id,
            account_id=issuer.account_id,
            user_id=user_id,
            auth_time=now,
            auth_method=method,
            browser_state=cookie_digest(value.partition(".")[2]),
            expires_at=expires_at,
        )
        return session, value

    async def _address_ok(self, issuer_id: str, user_id: str) -> bool:
        """False when the issuer requires a verified address (settings.access.
        require_verified_email) and the user's is not verified."""
        async with self.queries.pool.connection() as conn:
            check = await self.queries.email_check(conn, issuer_id, user_id)
        if check is None:
            return True  # an unknown issuer was refused before this
        access, verified = check
        return verified or not access_requires_verified_email(access)

    async def _proceed(
        self, flow: Flow, client: ClientEntry, session: OpSession, *, interactive: bool, saved: bool
    ) -> Outcome:
        """After authentication: the user active, the selected org available (4.2 step 9),
        consent (step 10), then the code."""
        async with self.queries.pool.connection() as conn:
            user = await self.people.user(conn, session.user_id)
            if user is None or user.status != "active":
                await self._drop(flow, saved)
                return self._error(flow, "user_blocked", "the user is not active")
            if flow.org is not None and not await self.people.is_active_member(
                conn, session.user_id, flow.org, client.organizations
            ):
                await self._drop(flow, saved)
                return self._error(
                    flow, "access_denied", "the user is not an active member of that organization"
                )
            consented = await self.queries.consented_scopes(conn, session.user_id, client.id)
        if self.consent_needed(flow, consented):
            if not interactive:
                return self._error(flow, "consent_required", "the user has not consented")
            if not saved:
                await self.flows.save(flow.id, flow.issuer_id, flow, flow.expires_at)
            return Outcome(redirect=portal_url(self.idp_base, flow.issuer_id, "consent", flow.id))
        return await self._code(flow, session, saved=saved)

    async def _drop(self, flow: Flow, saved: bool) -> None:
        if saved:
            await self.flows.finish(flow.id, flow.issuer_id)

    async def _code(self, flow: Flow, session: OpSession, *, saved: bool) -> Outcome:
        """Finish the flow (once: a replayed continuation is FlowGone) and send the code."""
        if saved and not await self.flows.finish(flow.id, flow.issuer_id):
            raise FlowGone(flow.id)
        now = self.clock.now_ms()
        grant = CodeGrant(
            issuer_id=flow.issuer_id,
            account_id=session.account_id,
            client_id=flow.client_id,
            redirect_uri=flow.redirect_uri,
            redirect_uri_given=flow.redirect_uri_given,
            code_challenge=flow.code_challenge,
            scopes=flow.scopes,
            nonce=flow.nonce,
            resources=flow.resources,
            org=flow.org,
            op_session_id=session.id,
            user_id=session.user_id,
            auth_time=session.auth_time,
            auth_method=session.auth_method,
        )
        code = await self.codes.issue(None, grant, now)
        params = {"code": code}
        if flow.state is not None:
            params["state"] = flow.state
        params["session_state"] = session_state(
            flow.client_id, flow.redirect_uri, session.browser_state, base62_secret(8)
        )
        return Outcome(redirect=with_query(flow.redirect_uri, params))

    def _error(self, flow: Flow, error: str, description: str) -> Outcome:
        return Outcome(redirect=error_redirect(flow.redirect_uri, error, description, flow.state))


class Known(Protocol[T_co]):
    def get(self, key: str, /) -> T_co | None: ...


_flow = msgspec.json.Decoder(Flow)


def _state(form: Form) -> str | None:
    """`state` to echo on an error redirect, if it was given once and is printable."""
    try:
        state = form.get("state")
    except InvalidRequest:
        return None
    return state if state is not None and state.isprintable() and len(state) <= MAX_STATE else None


def _user_meta(issuer: IssuerKeys, user_id: str, device: Device | None = None) -> Meta:
    return Meta(
        account_id=issuer.account_id,
        issuer_id=issuer.issuer_id,
        actor=Actor(
            type="user",
            user_id=user_id,
            ip=device.ip if device else None,
            user_agent=device.user_agent if device else None,
        ),
        trigger="idp",
        subject={"user_id": user_id},
    )
