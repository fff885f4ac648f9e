"""Request checks the grants share, each one rule raising its OAuth error: the grant enabled for
the client (RFC 6749 section 5.2 `unauthorized_client`), the requested scope (section 3.3) and the
resource indicator (RFC 8707 section 2)."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

from authpi.token.endpoints.errors import InvalidScope, InvalidTarget, UnauthorizedClient
from authpi.token.endpoints.params import Form

MAX_SCOPES = 256
# Resource indicators already found absolute and fragment-free (a client names the same one
# request after request), bounded: once full, the rest are parsed every time.
_ABSOLUTE: set[str] = set()
_ABSOLUTE_KEPT = 1024


def grant_enabled(grant: str, enabled: Collection[str]) -> None:
    if grant not in enabled:
        raise UnauthorizedClient(f"the {grant} grant is not enabled for this client")


def requested_scopes(form: Form, allowed: tuple[str, ...]) -> list[str]:
    """The requested scopes, all within `allowed`; the whole allowed set when none is asked."""
    raw = form.get("scope")
    if raw is None:
        return list(allowed)
    if " " not in raw and raw in allowed:  # one allowed scope, as it is
        return [raw]
    wanted = list(dict.fromkeys(raw.split()))
    if len(wanted) > MAX_SCOPES:
        raise InvalidScope(f"at most {MAX_SCOPES} scopes may be requested")
    permitted = set(allowed)
    extra = [s for s in wanted if s not in permitted]
    if extra:
        raise InvalidScope(f"scope not allowed for this client: {extra[0]}")
    return wanted


def audience(form: Form, client_id: str, allowed: tuple[str, ...]) -> str:
    """RFC 8707 `resource` -> `aud`, else the client id (idp-api.md 11.5, 14 #9)."""
    resources = form.all("resource")
    if not resources:
        return client_id
    if len(resources) > 1:
        raise InvalidTarget("request one resource per token")
    resource = resources[0]
    if resource not in _ABSOLUTE:
        parts = urlsplit(resource)
        if not parts.scheme or not parts.netloc or parts.fragment or len(resource) > 2048:
            raise InvalidTarget("resource must be an absolute URI without a fragment")
        if len(_ABSOLUTE) < _ABSOLUTE_KEPT:
            _ABSOLUTE.add(resource)
    if allowed and resource not in allowed:
        raise InvalidTarget("resource not allowed for this client")
    return resource
