"""The authorization endpoint's request validation (RFC 6749 section 4.1; idp-api.md 4.2, 12.1,
12.2): the ordered checks, PKCE and the redirect-URI rules. `Interactions.authorize`
(endpoints.interactions) runs them before a request becomes a login flow.

`GET /{issuer_id}/authorize` is validated in the order of idp-api.md 4.2: an unknown issuer is a
404, an unknown or inactive client and a missing or unregistered `redirect_uri` are an error page
(never a redirect: the URI is not trusted yet); every later error is a redirect to the client's
`redirect_uri` with `error`, `error_description` and `state`. Only `response_type=code`, only
PKCE `S256` (required for public clients, `plain` refused), exact redirect URI matching with the
RFC 8252 loopback port relaxation."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

import msgspec

from authpi.token.caches.issuer_keys import IssuerKeys
from authpi.token.endpoints.discovery import BASE_SCOPES
from authpi.token.endpoints.errors import InvalidRequest
from authpi.token.endpoints.flow import ErrorPage, OpSession
from authpi.token.endpoints.params import Form
from authpi.token.reactions.clients import ClientEntry

MAX_STATE = 2048
MAX_NONCE = 512
PROMPTS = frozenset({"none", "login", "consent", "select_account"})
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_ORG = re.compile(r"org_[0-9a-z]{1,64}")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "[::1]", "localhost"})


class RedirectError(Exception):
    """An authorization error delivered to the client's redirect URI (idp-api.md 4.2)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


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


def needs_login(
    session: OpSession | None, prompt: list[str], max_age: int | None, now: int
) -> bool:
    """Whether the user must authenticate (again): no session, prompt=login, or a max_age the
    session's authentication is older than (OIDC Core 3.1.2.1)."""
    if session is None or "login" in prompt:
        return True
    return max_age is not None and now - session.auth_time > max_age * 1000


def echo_state(form: Form) -> str | None:
    """`state` to echo on an error redirect, if it was given once and is printable."""
    try:
        state = form.get("state")
    except InvalidRequest:
        return None
    return state if state is not None and state.isprintable() and len(state) <= MAX_STATE else None
