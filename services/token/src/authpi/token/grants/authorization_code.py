"""The authorization_code grant (RFC 6749 section 4.1.3, RFC 7636; idp-api.md 5.3, 4.4, 12.1).

Checks, each `invalid_grant` unless said otherwise: the code exists for this issuer and client,
is unused and unexpired (60 s); `redirect_uri` is byte-identical to the one of /authorize; the
verifier (43-128 characters of RFC 7636, else `invalid_request`) hashes to the stored S256
challenge, and is refused when no challenge was sent; the op session is still usable and the
user still active; a selected org is still an active membership.

Then a transaction, shared with the exchanges that arrive meanwhile (a group commit,
handlers.code_exchanges), judges the code, then the op session and the user as they are there,
opens the client's rp session and its refresh family and consumes the code (single use: a
conditional UPDATE that also records what is issued, see grants.codes), and the tokens are
minted. A second presentation of the code fails and revokes what the first one issued: the rp
session (compromised) with its refresh family, and the access token's jti on the deny-list; the
replay itself is recorded (`auth.flow.replay-attempt`, artifact `code`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from authpi.contracts.base import Actor, Meta
from authpi.contracts.facts import HumanSignIn
from authpi.crypto.clock import Clock
from authpi.crypto.ids import Ids
from authpi.errors import NotFound
from authpi.token.adapters.facts import FactPublisher
from authpi.token.caches.issuer_keys import IssuerKeys
from authpi.token.domain.commands import RevokeToken
from authpi.token.domain.credential_commands import RecordReplay
from authpi.token.domain.refresh_family import StartFamily
from authpi.token.domain.rotation import MAX_TOKEN_TTL_S
from authpi.token.endpoints.discovery import issuer_url
from authpi.token.endpoints.errors import InvalidGrant, InvalidRequest, InvalidTarget
from authpi.token.endpoints.params import Form
from authpi.token.grants.access_token import new_jti
from authpi.token.grants.checks import grant_enabled
from authpi.token.grants.codes import CodeGrant, Codes, CodeUsed, Issued, StoredCode
from authpi.token.grants.id_token import Minted, Subject, UserTokenResponse, mint, refresh_exp
from authpi.token.handlers.code_exchanges import CodeExchanges
from authpi.token.handlers.credentials import Credentials
from authpi.token.handlers.revoked_tokens import Revocations
from authpi.token.handlers.sessions import Sessions
from authpi.token.queries.people import Person, PersonRequest
from authpi.token.queries.sessions import SessionRow
from authpi.token.reactions.clients import ClientEntry

GRANT = "authorization_code"
# What an exchange keeps of its transaction: the op session, the subject, the code's grant and
# the tokens minted there (so that the family records its first refresh token's digest).
Judged = tuple[SessionRow, Subject, CodeGrant, Minted]
VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def token_audience(form: Form, granted: list[str], client_id: str) -> str:
    """idp-api.md 11.5, 14 #9: a `resource` at /token picks one of the granted resources;
    without it, the first granted resource, else the client id."""
    asked = form.all("resource")
    if len(asked) > 1:
        raise InvalidTarget("request one resource per token")
    if asked:
        if asked[0] not in granted:
            raise InvalidTarget("resource was not granted")
        return asked[0]
    return granted[0] if granted else client_id


def client_meta(issuer: IssuerKeys, client: ClientEntry, user_id: str | None = None) -> Meta:
    return Meta(
        account_id=issuer.account_id,
        issuer_id=issuer.issuer_id,
        actor=Actor(type="client", client_id=client.id),
        trigger="idp",
        subject={"user_id": user_id} if user_id else {},
    )


class AuthorizationCodeGrant:
    def __init__(
        self,
        *,
        idp_base: str,
        clock: Clock,
        ids: Ids,
        codes: Codes,
        sessions: Sessions,
        exchanges: CodeExchanges,
        revocations: Revocations,
        facts: FactPublisher,
        attempts: Credentials | None = None,
    ) -> None:
        self.attempts = attempts
        self.idp_base = idp_base
        self.clock = clock
        self.ids = ids
        self.codes = codes
        self.sessions = sessions
        self.exchanges = exchanges
        self.revocations = revocations
        self.facts = facts

    async def issue(self, issuer: IssuerKeys, client: ClientEntry, form: Form) -> UserTokenResponse:
        grant_enabled(GRANT, client.grant_types)
        code = form.get("code")
        if not code or len(code) > 256:
            raise InvalidRequest("code is required")
        redirect_uri = form.get("redirect_uri")
        verifier = form.get("code_verifier")
        if verifier is not None and not VERIFIER.fullmatch(verifier):
            raise InvalidRequest("code_verifier must be 43-128 characters of [A-Za-z0-9-._~]")
        now = self.clock.now_ms()
        sid = self.ids.new("s")
        refresh = "refresh_token" in client.grant_types
        family_id = f"rtf_{self.ids.secret(12)}" if refresh else None
        refresh_jti = new_jti() if refresh else None
        access_jti = new_jti()
        access_exp = now // 1000 + min(client.access_token_ttl, MAX_TOKEN_TTL_S)
        url = issuer_url(self.idp_base, issuer.issuer_id)
        expires = now + issuer.session_max_age * 1000  # the rp session's absolute expiry
        issued = Issued(
            session_id=sid,
            family_id=family_id,
            access_jti=access_jti,
            access_expires_at=access_exp * 1000,
        )

        def check(stored: StoredCode | None) -> CodeGrant:
            # First in the exchange's transaction, on the code as read there. A refusal here
            # writes nothing.
            if stored is None or stored.grant.client_id != client.id:
                raise InvalidGrant("invalid authorization code")
            if stored.used_at is not None:
                raise CodeUsed()  # replayed: what it issued is revoked below
            grant = stored.grant
            if stored.expires_at <= now:
                raise InvalidGrant("Code expired")
            if redirect_uri != grant.redirect_uri and (grant.redirect_uri_given or redirect_uri):
                raise InvalidGrant("redirect_uri does not match the authorization request")
            _check_pkce(grant.code_challenge, verifier)
            token_audience(form, grant.resources, client.id)
            return grant

        def judge(grant: CodeGrant, op: SessionRow | None, person: Person | None) -> Judged:
            # Then, in the same transaction, the op session and the user as they are now.
            if op is None or not op.usable(now) or op.id != grant.op_session_id:
                raise InvalidGrant("the session has ended")
            if person is None or person.user.status != "active":
                raise InvalidGrant("the user is not active")
            if grant.org is not None and not person.organizations:
                # The selected org is no longer an active membership the client may see.
                raise InvalidGrant("the selected organization is not available")
            who = Subject(
                user_id=grant.user_id,
                sid=sid,
                scopes=grant.scopes,
                grant_scopes=grant.scopes,
                aud=token_audience(form, grant.resources, client.id),
                org_id=grant.org,
                organizations=person.organizations,
                claims=person.claims,
                auth_time=grant.auth_time // 1000,
            )
            minted = mint(
                url, issuer, client, who, now_ms=now, nonce=grant.nonce, access_jti=access_jti,
                refresh=(refresh_jti, family_id, refresh_exp(client, now // 1000, expires))
                if refresh_jti and family_id
                else None,
            )  # fmt: skip
            return op, who, grant, minted

        def family(grant: CodeGrant, judged: Judged) -> StartFamily | None:
            if family_id is None or refresh_jti is None:
                return None
            return StartFamily(
                family_id=family_id,
                issuer_id=issuer.issuer_id,
                client_id=client.id,
                user_id=grant.user_id,
                session_id=sid,
                jti=refresh_jti,
                scopes=grant.scopes,
                resources=grant.resources,
                org_id=grant.org,
                auth_time=grant.auth_time // 1000,
                started_at=now,
                token_sha256=judged[3].refresh_sha256,
            )

        try:
            op, who, grant, minted = await self.exchanges.exchange(
                issuer_id=issuer.issuer_id,
                code=code,
                client_id=client.id,
                session_id=sid,
                idle_timeout=issuer.session_idle_timeout,
                expires_at=expires,
                now=now,
                issued=issued,
                check=check,
                judge=judge,
                person=lambda grant: PersonRequest(
                    user_id=grant.user_id,
                    restriction=client.organizations,
                    selected=grant.org,
                    scopes=grant.scopes,
                ),
                family=family,
                meta=lambda grant: client_meta(issuer, client, grant.user_id),
            )
        except CodeUsed:
            await self._replayed(issuer, client, await self.codes.read(issuer.issuer_id, code))
            raise InvalidGrant("authorization code already used") from None
        self.facts.add(
            HumanSignIn(
                account_id=issuer.account_id,
                issuer_id=issuer.issuer_id,
                client_id=client.id,
                user_id=grant.user_id,
                session_id=who.sid,
                op_session_id=op.id,
                method=grant.auth_method,
                signed_in_at=now,
            )
        )
        return minted.response

    async def _replayed(
        self, issuer: IssuerKeys, client: ClientEntry, stored: StoredCode | None
    ) -> None:
        """RFC 6749 section 4.1.2: revoke what the first exchange issued."""
        if stored is None:
            return
        meta = client_meta(issuer, client, stored.grant.user_id)
        if self.attempts is not None:  # platform.md: auth.flow.replay-attempt
            await self.attempts.record(
                RecordReplay(
                    issuer_id=issuer.issuer_id, client_id=client.id, flow="authorization",
                    artifact="code", at=self.clock.now_ms(),
                ),
                meta,
            )  # fmt: skip
        if stored.session_id is not None:
            try:
                await self.sessions.compromise(
                    stored.session_id, reason="code_reuse", jti=None, meta=meta
                )
            except NotFound:
                pass  # nothing was issued from it
        if stored.access_jti is not None and stored.access_expires_at is not None:
            await self.revocations.revoke(
                RevokeToken(
                    jti=stored.access_jti,
                    issuer_id=issuer.issuer_id,
                    client_id=client.id,
                    token_type="access_token",
                    expires_at=stored.access_expires_at,
                    revoked_at=self.clock.now_ms(),
                ),
                meta,
            )


def _check_pkce(challenge: str | None, verifier: str | None) -> None:
    if challenge is None:
        if verifier is not None:
            raise InvalidGrant("no code_challenge was sent for this code")
        return
    if verifier is None:
        raise InvalidGrant("code_verifier is required")
    if not hmac.compare_digest(s256(verifier), challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge")
