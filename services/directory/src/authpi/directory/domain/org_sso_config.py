"""An organization's `sso` object (core-api.md 3.12, 3.16): whether SSO is on, whether it is the
only way in (`sso_only`: the verified domains' users cannot sign in with a password), and the
organization's upstream OpenID Provider, which the token service sends its users to.

Stored (in events and views) in one canonical shape, every field present:

    enabled                     bool, default false
    sso_only                    bool, default false (requires enabled)
    connection_type             "oidc" (the one protocol served)
    issuer_url                  the upstream's issuer identifier: https, a host, no user
                                information, query or fragment (OpenID Connect Discovery 1.0,
                                section 3); plain http only where the deployment allows insecure
                                SSO URLs (AUTHPI_SSO_ALLOW_INSECURE, development)
    client_id                   this platform's client id at the upstream
    scopes                      requested from the upstream; must include `openid`
    token_endpoint_auth_method  client_secret_basic (default) | client_secret_post | none
    client_secret_set           read only: whether a client secret is stored

Enabling needs `issuer_url` and `client_id`, and a client secret unless the method is `none`.
The client secret is write-only: a PATCH sets it (`client_secret`, or `null` to remove it) or
`POST …/sso/rotate-secret` draws one; it is kept only wrapped by the key-encryption key (the
handler wraps it, this module sees whether one is set). Pure: the caller passes the
deployment's URL policy."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import msgspec

from authpi.errors import FieldProblem, Unprocessable

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
CONNECTION_TYPES = ("oidc",)
DEFAULT_SCOPES = ("openid", "email", "profile")
MAX_URL = 2048
# Fields a client may send back unchanged (a GET's `sso` object PATCHed again): ignored.
READ_ONLY = ("client_secret_set",)


class SsoConfig(msgspec.Struct, frozen=True, kw_only=True):
    enabled: bool = False
    sso_only: bool = False
    connection_type: str = "oidc"
    issuer_url: str | None = None
    client_id: str | None = None
    scopes: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_SCOPES))
    token_endpoint_auth_method: str = "client_secret_basic"
    client_secret_set: bool = False

    @property
    def needs_secret(self) -> bool:
        return self.token_endpoint_auth_method != "none"


def stored(sso: dict[str, Any]) -> SsoConfig:
    """The configuration a stored `sso` object holds. Objects written before it was validated
    may hold anything: each known field of the right type is kept, the rest is dropped."""
    defaults = SsoConfig()
    values: dict[str, Any] = {}
    for name in SsoConfig.__struct_fields__:
        value = sso.get(name)
        default = getattr(defaults, name)
        if name in ("issuer_url", "client_id"):
            if isinstance(value, str):
                values[name] = value
        elif isinstance(default, bool):
            if isinstance(value, bool):
                values[name] = value
        elif isinstance(default, list):
            if isinstance(value, list) and all(isinstance(s, str) for s in value):  # pyright: ignore[reportUnknownVariableType]
                values[name] = list(value)  # pyright: ignore[reportUnknownArgumentType]
        elif name == "connection_type" and value in CONNECTION_TYPES:
            values[name] = value
        elif name == "token_endpoint_auth_method" and value in AUTH_METHODS:
            values[name] = value
    return SsoConfig(**values)


def as_object(config: SsoConfig) -> dict[str, Any]:
    return msgspec.to_builtins(config)


def _problem(field: str, code: str, message: str) -> Unprocessable:
    problem = FieldProblem(field=f"sso.{field}", code=code, message=f"sso.{field} {message}")
    return Unprocessable(problem.message, reason=f"organization.sso.{field}", fields=[problem])


def check_issuer_url(url: str, allow_insecure: bool) -> None:
    """An upstream issuer identifier this deployment may use (raises Unprocessable)."""
    if len(url) > MAX_URL or any(c.isspace() or not c.isprintable() for c in url):
        raise _problem("issuer_url", "invalid_value", "must be a URL without spaces")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _problem("issuer_url", "invalid_value", "is not a valid URL") from None
    del port
    if parts.scheme == "http" and not allow_insecure:
        raise _problem(
            "issuer_url", "insecure_url",
            "must use https (plain http is allowed only where the deployment allows insecure"
            " SSO URLs, for development)",
        )  # fmt: skip
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise _problem("issuer_url", "invalid_value", "must be an https URL with a host")
    if parts.username is not None or parts.password is not None:
        raise _problem("issuer_url", "invalid_value", "must not carry a user name or password")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise _problem("issuer_url", "invalid_value", "must have no query or fragment")


def merged(
    current: dict[str, Any],
    patch: dict[str, Any],
    *,
    secret_set: bool | None,
    allow_insecure: bool,
) -> dict[str, Any]:
    """The `sso` object after a create or PATCH: `patch` holds the fields the body named (its
    types already checked), `None` clearing `issuer_url` or `client_id`; `secret_set` says
    whether this write set (True) or removed (False) the client secret, None when it left it
    alone. Raises Unprocessable (fields `sso.<name>`) for a configuration that cannot work."""
    values = {k: v for k, v in patch.items() if k not in READ_ONLY}
    if secret_set is not None:
        values["client_secret_set"] = secret_set
    config = msgspec.structs.replace(stored(current), **values)
    if config.issuer_url is not None:
        check_issuer_url(config.issuer_url, allow_insecure)
    if "openid" not in config.scopes:
        raise _problem("scopes", "invalid_value", "must include openid")
    if config.enabled:
        for name in ("issuer_url", "client_id"):
            if getattr(config, name) is None:
                raise _problem(name, "required", "is required to enable SSO")
        if config.needs_secret and not config.client_secret_set:
            raise _problem(
                "client_secret", "required",
                f"is required to enable SSO with {config.token_endpoint_auth_method} (set it,"
                " rotate one, or use token_endpoint_auth_method none)",
            )  # fmt: skip
    if config.sso_only and not config.enabled:
        raise _problem("sso_only", "invalid_value", "requires sso.enabled")
    return as_object(config)
