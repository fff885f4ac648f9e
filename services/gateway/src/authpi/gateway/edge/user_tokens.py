"""Console users' access tokens on the Core API (core-api.md 1.2: `Authorization: Bearer <jwt>`,
type `user`): JWTs issued by AuthPI's own issuer (`PLATFORM_ISSUER_ID`), verified here with that
issuer's public keys only.

Keys: the platform issuer's public keys, from the in-memory cache `caches.platform_keys`
(never the token service's tables, DESIGN.md 2; never a private key). A token naming a key id
this process has not seen yet waits there, bounded, when that id was minted a moment ago.

Checks, in order; any failure is 401 `invalid_token` (the SDK refreshes on 401, so an expired
token is never a 403):
1. a compact JWS (three base64url segments), at most 8 KiB;
2. header `typ` is `at+jwt` (keeps ID and refresh tokens out, idp-api.md 11.0), `alg` one of
   ES256, EdDSA, RS256, and `kid` a known, unretired key of the platform issuer;
3. `alg` equals that key's algorithm (no `none`, no HS256 keyed with the public key), and the
   signature verifies with it;
4. `iss` is `{idp_url}/{PLATFORM_ISSUER_ID}`, `exp` is in the future and `nbf` (if any) is not,
   both by the injected clock, and `sub` is a user (`usr_…`).
`aud` is not checked: the console's client and resource audience are not settled yet, and only
the platform issuer's keys are accepted at all.

Accounts and scopes come from the token's `organizations` claim (idp-api.md 11.6): every
organization of the platform issuer backs an account sharing its suffix (core-api.md 1.7), and
each membership grants, on that account, the Core API scopes it holds (core-api.md 5.1: console
users' memberships hold the same scope strings as keys). `owner` grants every scope (5.1: "the
account owner holds all of them"). The spec gives the bare roles `admin` and `member` no Core API
meaning, so they, like any string outside the catalogue, grant nothing (deny by default); an
administrator is given the catalogue scopes they need in their membership."""

from __future__ import annotations

import re
from typing import Any

import jwt
import msgspec
from jwt.utils import base64url_decode

from authpi.contracts.console import PLATFORM_ISSUER_ID, account_of_org
from authpi.contracts.scopes import ALL_SCOPES, is_known
from authpi.crypto.clock import Clock
from authpi.errors import InvalidToken
from authpi.gateway.caches.platform_keys import PlatformKey, PlatformKeys
from authpi.web.body import too_deep
from authpi.web.principal import AccountAccess, Principal

ALGORITHMS = frozenset({"ES256", "EdDSA", "RS256"})
ACCESS_TOKEN_TYP = "at+jwt"
OWNER = "owner"
MAX_TOKEN_LENGTH = 8192
CHALLENGE = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_json_object = msgspec.json.Decoder(dict[str, Any])


class UserTokenVerifier:
    """A `BearerVerifier` for console users' access tokens (see the module docstring)."""

    def __init__(self, keys: PlatformKeys, clock: Clock, idp_url: str) -> None:
        self.keys = keys
        self.clock = clock
        self.issuer = f"{idp_url.rstrip('/')}/{PLATFORM_ISSUER_ID}"

    async def verify(self, token: str, client_ip: str | None) -> Principal:
        header = _header(token)
        key = await self.keys.lookup(header["kid"])
        if key is None:
            raise _refused("the access token's signing key is unknown", "user_token.unknown_kid")
        if key.retired:
            raise _refused("the access token's signing key is retired", "user_token.retired_kid")
        if header["alg"] != key.alg:
            raise _refused("the access token's algorithm is not its key's", "user_token.alg")
        claims = _verified_claims(token, key)
        self._check_claims(claims)
        accounts = memberships(claims.get("organizations"))
        if accounts is None:
            raise _refused("the access token's organizations are malformed", "user_token.orgs")
        return Principal(
            type="user",
            account_id="",  # bound to the path's account by the gateway (Principal.on_account)
            org_id="",
            scopes=frozenset(),
            user_id=claims["sub"],
            issuer_id=PLATFORM_ISSUER_ID,
            ip=client_ip,
            memberships=accounts,
        )

    def _check_claims(self, claims: dict[str, Any]) -> None:
        if claims.get("iss") != self.issuer:
            raise _refused("the access token is not from this issuer", "user_token.iss")
        now_ms = self.clock.now_ms()
        exp = _seconds(claims.get("exp"))
        if exp is None:
            raise _refused("the access token has no expiry", "user_token.no_exp")
        if exp * 1000 <= now_ms:
            raise _refused("the access token has expired", "user_token.expired")
        if "nbf" in claims:
            nbf = _seconds(claims["nbf"])
            if nbf is None or nbf * 1000 > now_ms:
                raise _refused("the access token is not valid yet", "user_token.nbf")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.startswith("usr_") or len(sub) > 64:
            raise _refused("the access token is not a user's", "user_token.sub")


class _OrganizationClaim(msgspec.Struct, frozen=True):
    """One entry of the `organizations` claim (idp-api.md 11.6); other fields are ignored."""

    id: str
    scopes: list[str] = []


def memberships(claim: object) -> tuple[AccountAccess, ...] | None:
    """The accounts of an `organizations` claim with their Core API scopes; None when malformed.
    Organizations that back no account (not `org_…`) are skipped."""
    if claim is None:
        return ()
    try:
        entries = msgspec.convert(claim, list[_OrganizationClaim])
    except msgspec.ValidationError:
        return None
    found: dict[str, AccountAccess] = {}
    for entry in entries:
        printable = entry.id.isprintable() and len(entry.id) <= 64
        account_id = account_of_org(entry.id) if printable else None
        if account_id is None:
            continue
        scopes = core_scopes(entry.scopes)
        if (prior := found.get(account_id)) is not None:
            scopes |= prior.scopes
        found[account_id] = AccountAccess(account_id=account_id, org_id=entry.id, scopes=scopes)
    return tuple(found.values())


def core_scopes(held: list[str]) -> frozenset[str]:
    """The Core API scopes of one membership: all of them for `owner`, else the catalogue
    scopes it names (`admin`, `member` and anything else grant nothing)."""
    if OWNER in held:
        return frozenset(ALL_SCOPES)
    return frozenset(s for s in held if is_known(s))


def _header(token: str) -> dict[str, str]:
    """The JOSE header of a well-formed compact JWS access token: `typ`, `alg` and `kid`."""
    segments = token.split(".")
    if len(token) > MAX_TOKEN_LENGTH or len(segments) != 3:
        raise _refused("the bearer token is not a JWT", "user_token.malformed")
    if not all(_SEGMENT.fullmatch(s) for s in segments):
        raise _refused("the bearer token is not a JWT", "user_token.malformed")
    try:
        raw = base64url_decode(segments[0])
        if too_deep(raw):
            raise ValueError("nested too deeply")
        header = _json_object.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
        raise _refused("the bearer token is not a JWT", "user_token.malformed") from None
    if header.get("typ") != ACCESS_TOKEN_TYP:
        raise _refused("the bearer token is not an access token", "user_token.typ")
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ALGORITHMS:
        raise _refused("the access token's algorithm is not accepted", "user_token.alg")
    if not isinstance(kid, str) or not kid:
        raise _refused("the access token names no signing key", "user_token.no_kid")
    return {"typ": ACCESS_TOKEN_TYP, "alg": alg, "kid": kid}


def _verified_claims(token: str, key: PlatformKey) -> dict[str, Any]:
    try:
        payload = jwt.api_jws.decode(token, key.key, algorithms=[key.alg])
        return _json_object.decode(payload)
    except (jwt.PyJWTError, msgspec.DecodeError, msgspec.ValidationError, ValueError, TypeError):
        raise _refused(
            "the access token's signature does not verify", "user_token.signature"
        ) from None


def _seconds(value: object) -> float | None:
    """A NumericDate claim (seconds), or None when it is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _refused(description: str, reason: str) -> InvalidToken:
    return InvalidToken(description, reason=reason, headers=dict(CHALLENGE))
