"""The refresh_token grant (RFC 6749 section 6; idp-api.md 5.4, 11.4, 12.3, 14 #6, #7, #33).

The token must be this issuer's (`iss`, a published `kid`), unexpired, and a refresh token (no
`typ`, a family id) of the authenticating client; it is proven genuine inside the rotation, by
being exactly the family's current token as issued, else by its signature
(handlers.refresh_families). One transaction, shared with the refreshes that arrive meanwhile
(a group commit, handlers.refresh_families), then reads the family, its rp session and the
user's status, claims and memberships, checks them (family active, the presented token its
current one, session active and within its absolute and idle lifetimes, user active, else
`invalid_grant`), mints the new tokens, appends the rotation (with the new refresh token's
digest) and updates the views (why it stays this lean is in domain.refresh_family).

* Rotation on every use; the new refresh token keeps the family's full grant.
* `scope` may narrow this access token (a subset of the grant), never widen (`invalid_scope`).
* `resource` picks one of the granted resources (`invalid_target` otherwise); without it, the
  family's first resource.
* Selected org: the family's `org_id` marker keeps issuing selected-org tokens; memberships are
  re-read, so a suspended org or membership disappears from `organizations` at once.
* Reuse of a rotated token: `invalid_grant`, and the family and its rp session end
  (`session.compromised`). Two concurrent refreshes of one token: exactly one wins.
* A session found past its absolute or idle lifetime is expired on the spot (`session.expired`).

Every refusal is `invalid_grant`."""

from __future__ import annotations

import contextlib
import hashlib
import re

from psycopg_pool import AsyncConnectionPool

from authpi.contracts.base import Meta
from authpi.contracts.facts import SessionTokenRefreshed
from authpi.crypto.clock import Clock
from authpi.errors import NotFound
from authpi.token.adapters.facts import FactPublisher
from authpi.token.caches.issuer_keys import IssuerKeys
from authpi.token.endpoints.discovery import issuer_url
from authpi.token.endpoints.errors import InvalidGrant, InvalidRequest, InvalidScope
from authpi.token.endpoints.params import Form
from authpi.token.grants.access_token import new_jti
from authpi.token.grants.authorization_code import client_meta, token_audience
from authpi.token.grants.checks import grant_enabled
from authpi.token.grants.id_token import Minted, Subject, UserTokenResponse, mint, refresh_exp
from authpi.token.handlers.refresh_families import (
    FamilyEnded,
    NotProven,
    RefreshFamilies,
    Replayed,
)
from authpi.token.handlers.sessions import Sessions
from authpi.token.queries.people import Person, PersonRequest
from authpi.token.queries.sessions import FamilyRow, SessionRow
from authpi.token.reactions.clients import ClientEntry
from authpi.token.signing.keys import signature_holds
from authpi.token.signing.verifier import TokenVerifier

GRANT = "refresh_token"
_ID = re.compile(r"[A-Za-z0-9_\-]{1,128}")  # ids and jtis as this issuer makes them


class SessionLapsed(Exception):
    def __init__(self, session_id: str, reason: str) -> None:
        super().__init__(reason)
        self.session_id = session_id
        self.reason = reason


def narrowed(raw: str | None, grant: list[str]) -> list[str]:
    if raw is None:
        return list(grant)
    wanted = list(dict.fromkeys(raw.split()))
    extra = [s for s in wanted if s not in grant]
    if extra:
        raise InvalidScope(f"scope was not granted: {extra[0]}")
    return wanted


class RefreshTokenGrant:
    def __init__(
        self,
        *,
        idp_base: str,
        clock: Clock,
        verifier: TokenVerifier,
        families: RefreshFamilies,
        sessions: Sessions,
        facts: FactPublisher,
        pool: AsyncConnectionPool,
    ) -> None:
        self.pool = pool
        self.idp_base = idp_base
        self.clock = clock
        self.verifier = verifier
        self.families = families
        self.sessions = sessions
        self.facts = facts

    async def issue(self, issuer: IssuerKeys, client: ClientEntry, form: Form) -> UserTokenResponse:
        grant_enabled(GRANT, client.grant_types)
        token = form.get("refresh_token")
        if not token:
            raise InvalidRequest("refresh_token is required")
        # Its claims are read now and trusted once it is proven, inside the rotation: by being
        # exactly the family's current token as issued, else by its signature
        # (handlers.refresh_families). A refusal on what it claims checks the signature first,
        # so a forgery is always told it is invalid.
        parsed = self.verifier.parse(issuer, token)
        if parsed is None:
            raise InvalidGrant("Refresh token expired or invalid")
        header, claims = parsed.header, parsed.claims

        def refuse(reason: str) -> InvalidGrant:
            if not signature_holds(parsed):
                return InvalidGrant("Refresh token expired or invalid")
            return InvalidGrant(reason)

        # The ids the rotation's shared statements are keyed by come from claims not yet
        # proven: anything but an id's characters (a NUL, which PostgreSQL's JSON refuses, would
        # fail every refresh of the batch) is refused here, as no token of this issuer has it.
        keys = [claims.get("fid"), claims.get("jti"), claims.get("sub")]
        keys += [claims["org_id"]] if "org_id" in claims else []
        if header.get("typ") is not None or not all(
            isinstance(k, str) and _ID.fullmatch(k) for k in keys
        ):
            raise refuse("not a refresh token")
        if claims.get("client_id") != client.id:
            raise refuse("the refresh token was issued to another client")
        jti, family_id, user_id = claims["jti"], claims["fid"], claims["sub"]
        org_id: str | None = claims.get("org_id")
        # Once proven, its `scope` is the family's full grant, its `org_id` the marker.
        grant = str(claims.get("scope", "")).split()
        try:
            scopes = narrowed(form.get("scope"), grant)
        except InvalidScope:
            if not signature_holds(parsed):
                raise InvalidGrant("Refresh token expired or invalid") from None
            raise
        now = self.clock.now_ms()
        meta = client_meta(issuer, client, user_id)
        next_jti = new_jti()
        url = issuer_url(self.idp_base, issuer.issuer_id)

        def check(
            family: FamilyRow, session: SessionRow | None, found: Person | None
        ) -> tuple[tuple[Minted, Subject, SessionRow], str | None]:
            # Judged inside the rotation's transaction, on what it read: the family, its rp
            # session, and the user's status, claims and memberships as they are now (an
            # inactive user rotates nothing). Then the tokens are minted there, so that the
            # rotation records the digest of the refresh token it hands out.
            if family.client_id != client.id:
                raise InvalidGrant("the refresh token was issued to another client")
            if session is None or session.status != "active":
                raise InvalidGrant(f"the session is {session.status if session else 'gone'}")
            lapsed = session.lapsed(now)
            if lapsed is not None:
                raise SessionLapsed(session.id, lapsed)
            if found is None or found.user.status != "active":
                raise InvalidGrant("the user is not active")
            who = Subject(
                user_id=user_id, sid=family.session_id, scopes=scopes, grant_scopes=family.scopes,
                aud=token_audience(form, family.resources, client.id), org_id=family.org_id,
                organizations=found.organizations, claims=found.claims,
                auth_time=family.auth_time,
            )  # fmt: skip
            minted = mint(
                url, issuer, client, who, now_ms=now,
                refresh=(next_jti, family.id, refresh_exp(client, now // 1000, session.expires_at)),
            )  # fmt: skip
            return (minted, who, session), minted.refresh_sha256

        person = PersonRequest(
            user_id=user_id, restriction=client.organizations, selected=org_id, scopes=scopes
        )
        try:
            minted, who, session = await self.families.rotate(
                issuer_id=issuer.issuer_id, family_id=family_id, jti=jti, next_jti=next_jti,
                now=now, check=check, meta=meta, person=person,
                sha256=hashlib.sha256(token.encode()).hexdigest(),
                authentic=lambda: signature_holds(parsed),
            )  # fmt: skip
        except (Replayed, FamilyEnded, SessionLapsed, NotProven) as exc:
            await self._refused(exc, jti, meta)
            raise
        self.facts.add(
            SessionTokenRefreshed(
                account_id=issuer.account_id,
                issuer_id=issuer.issuer_id,
                client_id=client.id,
                user_id=who.user_id,
                session_id=who.sid,
                refresh_count=session.refresh_count + 1,
                jti=next_jti,
                scope=" ".join(who.scopes),
                access_token_issued_at=now,
            )
        )
        return minted.response

    async def _refused(self, exc: BaseException, jti: str, meta: Meta) -> None:
        """What a refused rotation leaves behind: a replay ends the family and the session, a
        lapsed session is expired; the grant then answers `invalid_grant`."""
        if isinstance(exc, Replayed):
            await self.sessions.compromise(
                exc.family.session_id, reason="refresh_token_reuse", jti=jti, meta=meta
            )
            raise InvalidGrant("Token revoked") from None
        if isinstance(exc, NotProven):
            raise InvalidGrant("Refresh token expired or invalid") from None
        if isinstance(exc, FamilyEnded):
            raise InvalidGrant("Token revoked") from None
        if isinstance(exc, SessionLapsed):
            with contextlib.suppress(NotFound):
                await self.sessions.expire(exc.session_id, exc.reason, meta)
            raise InvalidGrant("the session has expired") from None
