"""Who is calling the Core API (core-api.md 1.2): HTTP Basic `key_id:secret` for API keys,
checked against the in-memory key cache; Bearer for JWTs and personal tokens, through a
`BearerVerifier` (`Bearers`: `ptk_…` personal tokens, else console users' access tokens). An API
key is never accepted as a Bearer token.

Refusals: a missing, malformed or wrong credential, or a key that is not active or has expired ->
401 `unauthorized_client` (a bad Bearer token -> 401 `invalid_token`); an organization-level key
whose organization is suspended, being deleted or deleted -> the same 401 (core-api.md 7, open
point 11; `organizations.OrganizationStatuses`); a source IP outside the key's allowlist -> 403
`access_denied`. Secrets are compared as SHA-256 digests in constant
time; the previous digest of a rotated key still counts until its grace ends."""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Callable
from typing import Protocol

from authpi.crypto.clock import Clock
from authpi.crypto.ids import digest_matches, sha256_hex
from authpi.errors import AccessDenied, Unauthorized
from authpi.gateway.caches.api_keys import ApiKeyCache, CachedKey
from authpi.web.principal import Principal

CHALLENGE = {"WWW-Authenticate": 'Basic realm="AuthPI Core API"'}
# Compared against when the key id is unknown, so both refusals take the same time.
_NO_KEY_DIGEST = sha256_hex("authpi: no such key")


class BearerVerifier(Protocol):
    """Turns a Bearer token (console JWT or `ptk_…` personal token) into a principal."""

    async def verify(self, token: str, client_ip: str | None) -> Principal: ...


PERSONAL_TOKEN_PREFIX = "ptk_"


class Bearers:
    """Bearer tokens by kind: a `ptk_…` value is a personal token, anything else must be a
    console user's access token (a JWT of AuthPI's own issuer). An API key secret, or anything
    else, fails the latter's checks: 401 `invalid_token`."""

    def __init__(self, *, users: BearerVerifier, personal: BearerVerifier) -> None:
        self.users = users
        self.personal = personal

    async def verify(self, token: str, client_ip: str | None) -> Principal:
        if token.startswith(PERSONAL_TOKEN_PREFIX):
            return await self.personal.verify(token, client_ip)
        return await self.users.verify(token, client_ip)


class OrganizationStatus(Protocol):
    def status(self, org_id: str) -> str: ...


class Authenticator:
    def __init__(
        self,
        keys: ApiKeyCache,
        clock: Clock,
        bearer: BearerVerifier,
        organizations: OrganizationStatus,
        verified: Callable[[CachedKey, int], None] | None = None,
    ) -> None:
        self._keys = keys
        self._clock = clock
        self._bearer = bearer
        self._organizations = organizations
        # Told of every successful key check (the metered `api-key.verified` fact).
        self._verified = verified

    async def authenticate(self, authorization: str | None, client_ip: str | None) -> Principal:
        scheme, _, value = (authorization or "").strip().partition(" ")
        match scheme.lower():
            case "basic":
                key_id, secret = parse_basic(value.strip())
                now = self._clock.now_ms()
                key = verify_key(await self._keys.lookup(key_id), secret, now)
                check_organization(key, self._organizations)
                check_source_ip(key, client_ip)
                if self._verified is not None:
                    self._verified(key, now)
                return principal_for(key, client_ip)
            case "bearer":
                return await self._bearer.verify(value.strip(), client_ip)
            case "":
                raise _unauthorized("credentials are required", "auth.missing")
        raise _unauthorized("unsupported authorization scheme", "auth.scheme")


def parse_basic(value: str) -> tuple[str, str]:
    try:
        # Header bytes arrive as latin-1 text; b64decode refuses non-ASCII with a ValueError.
        decoded = base64.b64decode(value, validate=True).decode()
    except ValueError:  # binascii.Error and UnicodeDecodeError included
        raise _unauthorized("malformed Basic credentials", "auth.malformed") from None
    key_id, colon, secret = decoded.partition(":")
    if not colon or not key_id or not secret:
        raise _unauthorized("malformed Basic credentials", "auth.malformed")
    return key_id, secret


def verify_key(key: CachedKey | None, secret: str, now_ms: int) -> CachedKey:
    if key is None:
        digest_matches(secret, _NO_KEY_DIGEST)
        raise _unauthorized("invalid API key credentials", "api_key.unknown")
    if not secret_matches(key, secret, now_ms):
        raise _unauthorized("invalid API key credentials", "api_key.wrong_secret")
    if key.status != "active":
        raise _unauthorized(f"the API key is {key.status}", f"api_key.{key.status}")
    if key.expires_at is not None and key.expires_at <= now_ms:
        raise _unauthorized("the API key has expired", "api_key.expired")
    return key


def secret_matches(key: CachedKey, secret: str, now_ms: int) -> bool:
    current = digest_matches(secret, key.secret_sha256)
    in_grace = key.previous_valid_until is not None and now_ms < key.previous_valid_until
    previous = in_grace and digest_matches(secret, key.previous_sha256 or _NO_KEY_DIGEST)
    return current or previous


def check_organization(key: CachedKey, organizations: OrganizationStatus) -> None:
    """An organization-level key works only while its organization is active."""
    if is_account_level(key):
        return
    status = organizations.status(key.org_id)
    if status != "active":
        raise _unauthorized(
            f"the API key's organization is {status}", f"api_key.organization_{status}"
        )


def is_account_level(key: CachedKey) -> bool:
    # An account-level key belongs to the account's backing organization, which shares the
    # account id's suffix (core-api.md 1.7); any other organization makes it organization-level.
    return key.org_id == "org_" + key.account_id.removeprefix("acc_")


def check_source_ip(key: CachedKey, client_ip: str | None) -> None:
    if key.ip_allowlist is None:
        return
    address = _address(client_ip)
    if address is None or not any(address in net for net in key.ip_allowlist):
        raise AccessDenied(
            "requests from this IP address are not allowed for this API key",
            reason="api_key.ip_refused",
        )


def principal_for(key: CachedKey, client_ip: str | None) -> Principal:
    return Principal(
        type="api_key",
        account_id=key.account_id,
        org_id=key.org_id,
        scopes=key.scopes,
        level="account" if is_account_level(key) else "organization",
        key_id=key.id,
        issuer_id=key.issuer_id,
        ip=client_ip,
    )


def _address(client_ip: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(client_ip or "")
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _unauthorized(description: str, reason: str) -> Unauthorized:
    return Unauthorized(description, reason=reason, headers=dict(CHALLENGE))
