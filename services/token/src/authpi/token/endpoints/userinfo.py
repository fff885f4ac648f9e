"""UserInfo (OIDC Core 5.3; idp-api.md 6), GET and POST: a Bearer access token of this issuer
with the `openid` scope. A missing, invalid, expired or revoked token, or one whose session was
revoked, suspended or has lapsed, or whose user is no longer active, is 401 `invalid_token`
(RFC 6750 3.1); a token without `openid` is 403 `insufficient_scope`.

Claims follow the token's scopes (idp-api.md 6 table, through People.claims); `organizations` is
read live (active memberships of active organizations, the client's restriction, the selected
org), never copied from the token; `org_id` when the token is org-restricted."""

from __future__ import annotations

from typing import Any

from authpi.crypto.clock import Clock
from authpi.token.caches.issuer_keys import IssuerKeys
from authpi.token.caches.revoked_tokens import DenyList
from authpi.token.endpoints.errors import InsufficientScope, InvalidToken
from authpi.token.endpoints.params import Form
from authpi.token.grants.id_token import PeopleReader
from authpi.token.queries.sessions import SessionQueries
from authpi.token.reactions.clients import ClientEntry
from authpi.token.signing.verifier import TokenVerifier


def bearer(authorization: str | None, form: Form | None = None) -> str:
    """The access token of `Authorization: Bearer` (RFC 6750 2.1), or of a form body's
    `access_token` (2.2, POST only); never both."""
    from_body = form.get("access_token") if form is not None else None
    if authorization is not None:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip() or from_body is not None:
            raise InvalidToken("use Authorization: Bearer <access token>")
        return value.strip()
    if from_body:
        return from_body
    raise InvalidToken("an access token is required")


class BearerCheck:
    """A live user access token of this issuer, with a usable session and an active user."""

    def __init__(
        self,
        verifier: TokenVerifier,
        revoked: DenyList,
        queries: SessionQueries,
        people: PeopleReader,
        clock: Clock,
    ) -> None:
        self.verifier = verifier
        self.revoked = revoked
        self.queries = queries
        self.people = people
        self.clock = clock

    async def user_token(self, issuer: IssuerKeys, token: str) -> tuple[dict[str, Any], Any]:
        """(the token's claims, the user record)."""
        decoded = self.verifier.decode(issuer, token)
        if decoded is None:
            raise InvalidToken()
        header, claims = decoded
        sid = claims.get("sid")
        if header.get("typ") != "at+jwt" or not isinstance(sid, str):
            raise InvalidToken("not a user access token")
        if self.revoked.revoked(str(claims.get("jti", ""))):
            raise InvalidToken("the access token was revoked")
        async with self.queries.pool.connection() as conn:
            session = await self.queries.session(conn, sid)
            if session is None or not session.usable(self.clock.now_ms()):
                raise InvalidToken("the session has ended")
            user = await self.people.user(conn, str(claims.get("sub")))
        if user is None or user.status != "active" or user.issuer_id != issuer.issuer_id:
            raise InvalidToken("the user is not active")
        return claims, user


class UserInfoEndpoint:
    def __init__(self, check: BearerCheck, people: PeopleReader, clients: Any) -> None:
        self.check = check
        self.people = people
        self.clients = clients

    async def answer(
        self, issuer: IssuerKeys, authorization: str | None, form: Form | None
    ) -> dict[str, Any]:
        claims, user = await self.check.user_token(issuer, bearer(authorization, form))
        scopes = str(claims.get("scope", "")).split()
        if "openid" not in scopes:
            raise InsufficientScope("the access token lacks the openid scope")
        client: ClientEntry | None = self.clients.get(str(claims.get("client_id")))
        org_id = claims.get("org_id")
        async with self.check.queries.pool.connection() as conn:
            out = await self.people.claims(conn, user, scopes)
            orgs = (
                await self.people.organizations(
                    conn, user.id, client.organizations, org_id if isinstance(org_id, str) else None
                )
                if client is not None
                else []
            )
        out["sub"] = user.id
        out["organizations"] = orgs
        if isinstance(org_id, str):
            out["org_id"] = org_id
        return out
