"""Validation of an organization's upstream ID token (OIDC Core 3.1.3.7), before anyone is signed
in with it. Pure: the caller passes the upstream's keys, what it expects and the time.

Checks, in order, each its own refusal: a JWS in compact form; an asymmetric algorithm the
upstream advertises (never `none`, never an HMAC: the client secret is no signing key here); a
signature by one of the upstream's published keys (matched by `kid` when the header names one);
`iss` exactly the upstream's issuer; `aud` naming this platform's client id, and `azp` equal to
it when present or when there are several audiences; `exp` in the future and `iat` not in the
future (60 s of leeway each way), `nbf` passed; `nonce` exactly the one this sign-in sent; a
non-empty `sub`."""

from __future__ import annotations

import hmac
from typing import Any

import jwt
import msgspec

ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
LEEWAY_S = 60


class IdTokenRefused(Exception):
    """The ID token cannot sign anyone in: `reason` is logged and recorded (never the token)."""

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(description)
        self.reason = reason
        self.description = description


class Expected(msgspec.Struct, frozen=True, kw_only=True):
    issuer: str
    client_id: str
    nonce: str
    now_s: int
    algorithms: list[str]


def _refuse(reason: str, description: str) -> IdTokenRefused:
    return IdTokenRefused(f"id_token.{reason}", description)


def _header(raw: str) -> dict[str, Any]:
    try:
        return jwt.get_unverified_header(raw)
    except jwt.PyJWTError:
        raise _refuse("malformed", "the ID token is not a signed JWT") from None


def _signed_claims(raw: str, alg: str, kid: Any, keys: list[dict[str, Any]]) -> dict[str, Any]:
    candidates = [
        k for k in keys
        if (kid is None or k.get("kid") == kid)
        and k.get("use", "sig") == "sig"
        and k.get("alg", alg) == alg
    ]  # fmt: skip
    if not candidates:
        raise _refuse("unknown_key", "the ID token is signed with a key the provider does not list")
    for jwk in candidates:
        try:
            key = jwt.PyJWK(jwk, algorithm=alg).key
        except jwt.PyJWTError:
            continue  # a key of another type under the same id: try the next
        try:
            return jwt.decode(
                raw, key, algorithms=[alg],
                options={"verify_signature": True, "verify_aud": False, "verify_iss": False,
                         "verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )  # fmt: skip
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError:
            raise _refuse("malformed", "the ID token cannot be read") from None
    raise _refuse("bad_signature", "the ID token's signature does not verify")


def _audience_ok(claims: dict[str, Any], client_id: str) -> bool:
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if client_id not in audiences:
        return False
    azp = claims.get("azp")
    if azp is not None or len(audiences) > 1:  # pyright: ignore[reportUnknownArgumentType]
        return azp == client_id
    return True


def _time_ok(claims: dict[str, Any], now_s: int) -> str | None:
    exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        return "expired"
    if exp <= now_s - LEEWAY_S:
        return "expired"
    if not isinstance(iat, int | float) or isinstance(iat, bool) or iat > now_s + LEEWAY_S:
        return "issued_in_future"
    if isinstance(nbf, int | float) and not isinstance(nbf, bool) and nbf > now_s + LEEWAY_S:
        return "not_yet_valid"
    return None


def check_id_token(raw: str, keys: list[dict[str, Any]], expected: Expected) -> dict[str, Any]:
    """The ID token's claims, once every check passed; IdTokenRefused otherwise."""
    header = _header(raw)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ASYMMETRIC or alg not in expected.algorithms:
        raise _refuse("algorithm", f"the ID token's algorithm {alg!r} is not accepted")
    claims = _signed_claims(raw, alg, header.get("kid"), keys)
    if claims.get("iss") != expected.issuer:
        raise _refuse("issuer", "the ID token was issued by another issuer")
    if not _audience_ok(claims, expected.client_id):
        raise _refuse("audience", "the ID token was issued to another client")
    problem = _time_ok(claims, expected.now_s)
    if problem is not None:
        raise _refuse(problem, "the ID token is expired or not valid yet")
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not hmac.compare_digest(
        nonce.encode(), expected.nonce.encode()
    ):
        raise _refuse("nonce", "the ID token does not belong to this sign-in (nonce)")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise _refuse("subject", "the ID token names no subject")
    return claims
