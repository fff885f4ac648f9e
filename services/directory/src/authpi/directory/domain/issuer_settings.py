"""An issuer's `settings` object (core-api.md 3.7): `portals`, `branding`, `access`, `security`.
The parts the IdP runtime reads are checked and completed with their defaults; the rest of each
section is kept as given. Defaults: sessions 7 days / 12 hours idle, access tokens 30 minutes,
refresh tokens 7 days, every signing algorithm with ES256 first (idp-api.md 11.7, 13); a second
factor is required only where `security.mfa_required` is true."""

from __future__ import annotations

from typing import Any

from authpi.contracts.directory import TokenPolicy
from authpi.directory.domain.checks import (
    MAX_TOKEN_TTL,
    SIGNING_ALGS,
    choice,
    integer,
    invalid,
    limited_size,
    obj,
    strings,
    ttl,
)

SECTIONS = ("portals", "branding", "access", "security")
ACCESS_MODES = ("open", "invite_only", "approval", "closed")
TRUSTED_DEVICE_TTL = 30 * 24 * 3600
_DEFAULT = TokenPolicy()


def normalize(settings: dict[str, Any]) -> tuple[dict[str, Any], TokenPolicy]:
    """The stored settings and the token policy they define; 422 on a bad value."""
    out = {name: obj(settings.get(name), f"settings.{name}") for name in SECTIONS}
    access, policy_a = _access(out["access"])
    security, policy_s = _security(out["security"])
    out["access"], out["security"] = access, security
    limited_size(out, "settings")
    return out, TokenPolicy(**policy_a, **policy_s)


def _access(access: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    f = "settings.access"
    sessions = obj(access.get("sessions"), f"{f}.sessions")
    tokens = obj(access.get("tokens"), f"{f}.tokens")
    max_age = integer(sessions.get("max_age"), f"{f}.sessions.max_age", 60, 31_536_000,
                      _DEFAULT.session_max_age)  # fmt: skip
    idle = integer(sessions.get("idle_timeout"), f"{f}.sessions.idle_timeout", 60, 2_592_000,
                   _DEFAULT.session_idle_timeout)  # fmt: skip
    policy = {
        "session_max_age": max_age,
        "session_idle_timeout": idle,
        "access_token_ttl": ttl(tokens.get("access_token_ttl"), f"{f}.tokens.access_token_ttl",
                                _DEFAULT.access_token_ttl),
        "refresh_token_ttl": ttl(tokens.get("refresh_token_ttl"),
                                 f"{f}.tokens.refresh_token_ttl", _DEFAULT.refresh_token_ttl),
        "id_token_ttl": ttl(tokens.get("id_token_ttl"), f"{f}.tokens.id_token_ttl",
                            _DEFAULT.id_token_ttl),
    }  # fmt: skip
    access["mode"] = choice(access.get("mode"), f"{f}.mode", ACCESS_MODES, "open")
    access["sessions"] = {**sessions, "max_age": max_age, "idle_timeout": idle}
    access["tokens"] = {**tokens, **{k: v for k, v in policy.items() if k.endswith("_ttl")}}
    return access, policy


def _security(security: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    _second_factor(security)
    f = "settings.security.signing"
    signing = obj(security.get("signing"), f)
    algs = strings(signing.get("algorithms"), f"{f}.algorithms") or list(SIGNING_ALGS)
    for i, alg in enumerate(algs):
        if alg not in SIGNING_ALGS:
            raise invalid(f"{f}.algorithms.{i}", f"must be one of {', '.join(SIGNING_ALGS)}")
    default = choice(signing.get("default_alg"), f"{f}.default_alg", tuple(algs), algs[0])
    security["signing"] = {**signing, "algorithms": algs, "default_alg": default}
    return security, {"signing_algs": algs, "default_signature_alg": default}


def _second_factor(security: dict[str, Any]) -> None:
    """`mfa_required` (every user passes a second factor at sign-in; default false) and
    `trusted_device_ttl` (seconds a device trusted at sign-in skips it; default 30 days, 1 hour to
    1 year), as the token service's portal reads them."""
    f = "settings.security"
    required = security.get("mfa_required")
    if required is not None and not isinstance(required, bool):
        raise invalid(f"{f}.mfa_required", "must be a boolean", "invalid_type")
    if "trusted_device_ttl" in security:
        security["trusted_device_ttl"] = integer(
            security["trusted_device_ttl"], f"{f}.trusted_device_ttl", 3600, 31_536_000,
            TRUSTED_DEVICE_TTL,
        )  # fmt: skip


__all__ = ["ACCESS_MODES", "MAX_TOKEN_TTL", "normalize"]
