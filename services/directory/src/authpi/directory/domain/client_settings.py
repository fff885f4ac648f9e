"""A client's `settings` object (core-api.md 3.8, idp-api.md 2.2, 12.2) to and from the typed
ClientConfig the token service reads. Grant types depend on the client type: public clients
(spa, native) use authorization code + refresh; web clients may add client_credentials; m2m
clients use client_credentials only. Redirect URIs are registered exactly, HTTPS except on
loopback, private-use schemes only for native clients."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import msgspec

from authpi.contracts.directory import ClientConfig, OrganizationRestriction
from authpi.directory.domain.checks import SIGNING_ALGS, choice, invalid, obj, strings, ttl

TYPES = ("spa", "native", "web", "m2m")
CONFIDENTIAL = frozenset({"web", "m2m"})
GRANTS: dict[str, tuple[str, ...]] = {
    "spa": ("authorization_code", "refresh_token"),
    "native": ("authorization_code", "refresh_token"),
    "web": ("authorization_code", "refresh_token", "client_credentials"),
    "m2m": ("client_credentials",),
}
DEFAULT_GRANTS = {"spa": GRANTS["spa"], "native": GRANTS["native"],
                  "web": ("authorization_code", "refresh_token"), "m2m": GRANTS["m2m"]}  # fmt: skip
USER_SCOPES = ["openid", "profile", "email"]
ORG_MODES = ("all", "none", "allowlist")
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_DEFAULT = ClientConfig()


def normalize(client_type: str, settings: dict[str, Any]) -> ClientConfig:
    """The typed configuration of `settings` for a client of `client_type`; 422 when invalid."""
    openid = obj(settings.get("openid"), "settings.openid")
    grants = _grants(client_type, settings.get("grant_types"))
    redirects = openid.get("redirect_uris", settings.get("redirect_uris"))
    logout = openid.get("post_logout_redirect_uris", settings.get("post_logout_redirect_uris"))
    default_app = "native" if client_type == "native" else "web"
    return ClientConfig(
        application_type=choice(openid.get("application_type"),
                                "settings.openid.application_type", ("web", "native"),
                                default_app),
        redirect_uris=_uris(redirects, "settings.redirect_uris", client_type),
        post_logout_redirect_uris=_uris(logout, "settings.post_logout_redirect_uris",
                                        client_type),
        grant_types=grants,
        response_types=_response_types(settings.get("response_types"), grants),
        scopes=_scopes(client_type, settings.get("scopes")),
        audiences=strings(settings.get("audiences"), "settings.audiences", max_len=2000),
        access_token_ttl=ttl(settings.get("access_token_ttl"), "settings.access_token_ttl",
                             _DEFAULT.access_token_ttl),
        refresh_token_ttl=ttl(settings.get("refresh_token_ttl"), "settings.refresh_token_ttl",
                              _DEFAULT.refresh_token_ttl),
        id_token_ttl=ttl(settings.get("id_token_ttl"), "settings.id_token_ttl",
                         _DEFAULT.id_token_ttl),
        response_signature_alg=choice(settings.get("response_signature_alg"),
                                      "settings.response_signature_alg", SIGNING_ALGS, "ES256"),
        organizations=_organizations(settings.get("organizations")),
    )  # fmt: skip


def to_settings(config: ClientConfig) -> dict[str, Any]:
    """The public `settings` object; `openid` mirrors what the IdP SDK reads there."""
    out = msgspec.to_builtins(config)
    out["openid"] = {
        "application_type": out.pop("application_type"),
        "redirect_uris": config.redirect_uris,
        "post_logout_redirect_uris": config.post_logout_redirect_uris,
    }
    return out


def patched(config: ClientConfig, patch: dict[str, Any]) -> dict[str, Any]:
    """The settings input after a PATCH: supplied keys replace, null restores the default,
    `openid` merges key by key."""
    current = msgspec.to_builtins(config)
    current["openid"] = {"application_type": current.pop("application_type")}
    for key, value in patch.items():
        if key == "openid" and isinstance(value, dict):
            current["openid"] = {**current["openid"], **value}
        elif value is None:
            current.pop(key, None)
        else:
            current[key] = value
    return current


def _grants(client_type: str, value: Any) -> list[str]:
    allowed = GRANTS[client_type]
    grants = strings(value, "settings.grant_types") or list(DEFAULT_GRANTS[client_type])
    for i, grant in enumerate(grants):
        if grant not in allowed:
            text = f"must be one of {', '.join(allowed)} for a {client_type} client"
            raise invalid(f"settings.grant_types.{i}", text)
    if grants == ["refresh_token"]:
        raise invalid("settings.grant_types", "refresh_token needs authorization_code")
    return grants


def _response_types(value: Any, grants: list[str]) -> list[str]:
    if "authorization_code" not in grants:
        return []
    types = strings(value, "settings.response_types") or ["code"]
    if types != ["code"]:
        raise invalid("settings.response_types", 'must be ["code"]')
    return types


def _scopes(client_type: str, value: Any) -> list[str]:
    if value is None:
        return [] if client_type == "m2m" else list(USER_SCOPES)
    return strings(value, "settings.scopes", max_items=256)


def _organizations(value: Any) -> OrganizationRestriction:
    f = "settings.organizations"
    given = obj(value, f)
    mode = choice(given.get("mode"), f"{f}.mode", ORG_MODES, "all")
    allowlist = strings(given.get("allowlist"), f"{f}.allowlist", max_items=1000)
    if allowlist and mode != "allowlist":
        raise invalid(f"{f}.allowlist", "is only allowed with mode allowlist")
    for i, org_id in enumerate(allowlist):
        if not org_id.startswith("org_"):
            raise invalid(f"{f}.allowlist.{i}", "must be an organization id (org_...)")
    return OrganizationRestriction(mode=mode, allowlist=allowlist)


def _uris(value: Any, field: str, client_type: str) -> list[str]:
    uris = strings(value, field, max_len=2000)
    for i, uri in enumerate(uris):
        problem = redirect_problem(uri, client_type)
        if problem:
            raise invalid(f"{field}.{i}", problem)
    return uris


def redirect_problem(uri: str, client_type: str) -> str | None:
    """Why `uri` cannot be registered for a `client_type` client (idp-api.md 12.2), or None."""
    if "#" in uri or "\\" in uri:
        return "must not contain a fragment or a backslash"
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return "is not a valid URI"
    if parts.scheme in ("http", "https"):
        if not host or "*" in (parts.netloc or "") or "@" in (parts.netloc or ""):
            return "must name a host, without wildcards or user information"
        if parts.scheme == "http" and host not in _LOOPBACK:
            return "must use https (http only on loopback)"
        return None
    if "." in parts.scheme and client_type == "native":
        return None  # private-use scheme (RFC 8252 7.1), e.g. com.example.app:/callback
    return "must be an https URI (private-use schemes only for native clients)"
