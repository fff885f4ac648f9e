"""The token set of a human login (idp-api.md 11.2-11.4), minted by the authorization_code and
refresh_token grants: an access token (`at+jwt`), an ID token when `openid` was granted, and a
refresh token when the client has the refresh_token grant. ID and refresh tokens carry no `typ`,
so resource servers that insist on `at+jwt` refuse them.

* Access token: iss, sub, aud (the resource, else the client), exp, iat, auth_time (= iat),
  jti, sid, client_id, dat {type: identity}, scope, organizations, org_id when selected.
* ID token: iss, sub, aud (the client), exp, iat, auth_time (the user's actual
  authentication), nonce (code exchange only), sid, azp, at_hash, the claims of the granted
  scopes (idp-api.md 6), organizations and org_id.
* Refresh token: iss, sub, aud and client_id (the client), iat, exp, jti, fid, sid, scope (the
  full grant), org_id when selected; never auth_time, never organizations.

Lifetimes: the client's, capped at 21 days; a refresh token never outlives its session's
absolute expiry (idp-api.md 14 #33)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Collection
from typing import Any, Protocol

import msgspec
import psycopg

from authpi.contracts.directory import OrganizationRestriction
from authpi.token.caches.issuer_keys import IssuerKeys, Signer
from authpi.token.domain.rotation import MAX_TOKEN_TTL_S
from authpi.token.endpoints.errors import TemporarilyUnavailable
from authpi.token.grants.access_token import new_jti
from authpi.token.reactions.clients import ClientEntry
from authpi.token.signing.keys import sign_jwt

Conn = psycopg.AsyncConnection[Any]


class UserLike(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def issuer_id(self) -> str: ...

    @property
    def status(self) -> str: ...


class PeopleReader(Protocol):
    """What human login reads of users (authpi.token.queries.people.People)."""

    async def user(self, conn: Conn, user_id: str) -> Any: ...

    async def claims(self, conn: Conn, user: Any, scopes: Collection[str]) -> dict[str, Any]: ...

    async def organizations(
        self,
        conn: Conn,
        user_id: str,
        restriction: OrganizationRestriction,
        selected: str | None,
    ) -> list[dict[str, Any]]: ...

    async def is_active_member(
        self, conn: Conn, user_id: str, org_id: str, restriction: OrganizationRestriction
    ) -> bool: ...

    async def person(
        self,
        conn: Conn,
        user_id: str,
        restriction: OrganizationRestriction,
        selected: str | None,
        scopes: Collection[str],
    ) -> Any: ...

    async def send_person(
        self,
        conn: Conn,
        user_id: str,
        restriction: OrganizationRestriction,
        selected: str | None,
        scopes: Collection[str],
    ) -> Any: ...


class UserTokenResponse(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """RFC 6749 section 5.1 with the OIDC `id_token`."""

    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str | None = None
    id_token: str | None = None
    scope: str | None = None


class Subject(msgspec.Struct, frozen=True, kw_only=True):
    """Who the tokens are for, and what was read of them at issuance."""

    user_id: str
    sid: str
    scopes: list[str]  # the effective scope of this access token
    grant_scopes: list[str]  # the family's full grant (refresh token `scope`)
    aud: str
    org_id: str | None
    organizations: list[dict[str, Any]]
    claims: dict[str, Any]  # the ID token's scope claims
    auth_time: int  # Unix s of the user's authentication


class Minted(msgspec.Struct, frozen=True, kw_only=True):
    response: UserTokenResponse
    access_jti: str
    access_exp: int  # Unix s
    refresh_jti: str | None
    iat: int
    refresh_sha256: str | None = None  # of the refresh token, which its family records


def at_hash(access_token: str, alg: str) -> str:
    """OIDC Core 3.1.3.6: the left half of the token's hash (SHA-512 for Ed25519)."""
    digest = (hashlib.sha512 if alg == "EdDSA" else hashlib.sha256)(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def signer_for(issuer: IssuerKeys, client: ClientEntry) -> Signer:
    signer = issuer.signers.get(client.alg) or issuer.signers.get(issuer.default_alg)
    if signer is None:
        raise TemporarilyUnavailable("no signing key for this client yet")
    return signer


def refresh_exp(client: ClientEntry, iat: int, session_expires_ms: int) -> int:
    return min(iat + min(client.refresh_token_ttl, MAX_TOKEN_TTL_S), session_expires_ms // 1000)


def mint(
    issuer_url: str,
    issuer: IssuerKeys,
    client: ClientEntry,
    who: Subject,
    *,
    now_ms: int,
    nonce: str | None = None,
    refresh: tuple[str, str, int] | None = None,  # (jti, family id, exp in Unix s)
    access_jti: str | None = None,
) -> Minted:
    signer = signer_for(issuer, client)
    iat = now_ms // 1000
    ttl = min(client.access_token_ttl, MAX_TOKEN_TTL_S)
    jti = access_jti or new_jti()
    scope = " ".join(who.scopes)
    access: dict[str, Any] = {
        "iss": issuer_url,
        "sub": who.user_id,
        "aud": who.aud,
        "exp": iat + ttl,
        "iat": iat,
        "auth_time": iat,
        "jti": jti,
        "sid": who.sid,
        "client_id": client.id,
        "dat": {"type": "identity"},
        "scope": scope,
        "organizations": who.organizations,
    }
    if who.org_id is not None:
        access["org_id"] = who.org_id
    access_token = sign_jwt(signer.key, signer.kid, signer.alg, access, "at+jwt")
    id_token = None
    if "openid" in who.scopes:
        claims: dict[str, Any] = {
            **who.claims,
            "iss": issuer_url,
            "sub": who.user_id,
            "aud": client.id,
            "azp": client.id,
            "exp": iat + min(client.id_token_ttl, MAX_TOKEN_TTL_S),
            "iat": iat,
            "auth_time": who.auth_time,
            "sid": who.sid,
            "at_hash": at_hash(access_token, signer.alg),
            "organizations": who.organizations,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if who.org_id is not None:
            claims["org_id"] = who.org_id
        id_token = sign_jwt(signer.key, signer.kid, signer.alg, claims)
    refresh_token = None
    if refresh is not None:
        refresh_jti, family_id, exp = refresh
        rt: dict[str, Any] = {
            "iss": issuer_url,
            "sub": who.user_id,
            "aud": client.id,
            "client_id": client.id,
            "iat": iat,
            "exp": exp,
            "jti": refresh_jti,
            "fid": family_id,
            "sid": who.sid,
            "scope": " ".join(who.grant_scopes),
        }
        if who.org_id is not None:
            rt["org_id"] = who.org_id
        refresh_token = sign_jwt(signer.key, signer.kid, signer.alg, rt)
    return Minted(
        response=UserTokenResponse(
            access_token=access_token,
            token_type="Bearer",
            expires_in=ttl,
            refresh_token=refresh_token,
            id_token=id_token,
            scope=scope,
        ),
        access_jti=jti,
        access_exp=iat + ttl,
        refresh_jti=refresh[0] if refresh else None,
        iat=iat,
        refresh_sha256=hashlib.sha256(refresh_token.encode()).hexdigest()
        if refresh_token
        else None,
    )
