"""The values an authorization passes between /authorize (endpoints.authorize), its continuation
(endpoints.interactions) and the hosted portal: the flow, the op session and its cookie, the
device, the outcome, the two errors that never become a redirect to the client, and the
issuer's verified-email setting that both the continuation and the portal's sign-in check."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

import msgspec

T_co = TypeVar("T_co", covariant=True)


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


class Known(Protocol[T_co]):
    def get(self, key: str, /) -> T_co | None: ...


def access_requires_verified_email(access: object) -> bool:
    """An issuer's settings.access.require_verified_email: false when absent; a value that is not
    a boolean requires verification (a malformed setting fails closed)."""
    value = access.get("require_verified_email") if isinstance(access, Mapping) else None
    if value is None or isinstance(value, bool):
        return bool(value)
    return True


def session_state(client_id: str, redirect_uri: str, browser_state: str, salt: str) -> str:
    """OIDC Session Management 1.0 section 3 (idp-api.md 8.3)."""
    origin = origin_of(redirect_uri)
    digest = hashlib.sha256(f"{client_id} {origin} {browser_state} {salt}".encode()).digest()
    return f"{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}.{salt}"


def origin_of(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def cookie_header(
    idp_base: str,
    issuer_id: str,
    value: str | None,
    *,
    name: str | None = None,
    max_age: int | None = None,
) -> str:
    """The Set-Cookie value of the op session cookie (idp-api.md 12.6, 14 #30), or of another
    portal cookie `name` with the same attributes: HttpOnly, SameSite=Lax, scoped to the issuer's
    path, Secure unless the IdP is plain http on a loopback host (development); `max_age` in
    seconds (none: a browser-session cookie). `None` clears it."""
    base = urlsplit(idp_base)
    path = f"{base.path.rstrip('/')}/{issuer_id}"
    attrs = f"Path={path}; HttpOnly; SameSite=Lax"
    if not (base.scheme == "http" and base.hostname in ("127.0.0.1", "localhost", "::1")):
        attrs += "; Secure"
    cookie = name or COOKIE
    if value is None:
        return f"{cookie}=; {attrs}; Max-Age=0"
    if max_age is not None:
        attrs += f"; Max-Age={max_age}"
    return f"{cookie}={value}; {attrs}"


COOKIE = "authpi_session"
