"""The federated sign-in through an organization's upstream OpenID Provider (core-api.md 3.16,
idp-api.md 10.2, 12.6): `/{issuer_id}/sso/start` and `/{issuer_id}/sso/callback`, framework-free
(the portal's sso flows render the answers).

Start: the organization must be active with SSO enabled and an upstream configured. The
upstream's metadata comes from its `.well-known/openid-configuration`; the browser is sent to its
authorization endpoint with an authorization code request (OIDC Core 3.1.2.1): `state`, `nonce`
and a PKCE S256 challenge (RFC 7636), each 256 random bits, the organization's scopes, the
address typed on the login page as `login_hint`, and `prompt=login` / `max_age` when the
authorization asked for a fresh sign-in. The sign-in is remembered for 10 minutes in
`sso_logins` under the SHA-256 of its state, bound to the browser by the `authpi_sso` cookie
(HttpOnly, SameSite=Lax, path of the issuer): a callback from another browser (login CSRF) is
refused. A sign-in started from an invitation's sign-in or sign-up page keeps the invitation's
token with it, wrapped by the KEK, and hands it back at the callback (portal.sso accepts it).

Callback: the state is consumed once (a second presentation is a replay); an `iss` parameter
must name the upstream (RFC 9207); the code is exchanged at the upstream's token endpoint with
the PKCE verifier and the organization's client authentication (the SSO client secret, unwrapped
from the KEK only for this request); the ID token is checked (endpoints.upstream_id_token:
signature by the upstream's JWKS, iss, aud/azp, exp/iat, nonce). The address comes from the ID
token, or from the userinfo endpoint when the ID token has none (its `sub` must match). It must
not be marked unverified, and its domain must be one the organization verified: an organization
speaks only for the addresses of its own domains."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
import msgspec
from psycopg_pool import AsyncConnectionPool

from authpi.contracts.directory import SsoIdentity, sso_secret_context
from authpi.crypto.clock import Clock
from authpi.crypto.envelope import Kek
from authpi.crypto.ids import Ids
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.token.adapters.upstream_oidc import UpstreamError, UpstreamOidc
from authpi.token.endpoints.discovery import issuer_url
from authpi.token.endpoints.flow import Flow, cookie_header
from authpi.token.endpoints.sso import email_domain
from authpi.token.endpoints.upstream_id_token import Expected, IdTokenRefused, check_id_token
from authpi.token.queries.sso import SsoConnection, SsoQueries, SsoRouteRow

LOGIN_TTL_S = 600
COOKIE = "authpi_sso"
MAX_PARAM = 2048


class SsoRefused(Exception):
    """The sign-in cannot go on: `reason` is logged and recorded, `description` shown; a
    `replayed` state is recorded as a replay attempt."""

    def __init__(
        self, reason: str, description: str, status: int = 400, *, replayed: bool = False
    ) -> None:
        super().__init__(description)
        self.reason = reason
        self.description = description
        self.status = status
        self.replayed = replayed


class Started(msgspec.Struct, frozen=True, kw_only=True):
    location: str  # the upstream's authorization request
    browser: str  # the `authpi_sso` cookie value binding the callback to this browser


class Finished(msgspec.Struct, frozen=True, kw_only=True):
    org_id: str
    flow_id: str | None
    identity: SsoIdentity
    invitation: str | None = None  # the token of the invitation the sign-in accepts


def invitation_context(state: str) -> str:
    """The key-wrapping context of an invitation token kept with one SSO sign-in's state."""
    return f"authpi.sso-login-invitation:{digest(state)}"


class _Pending(msgspec.Struct, frozen=True, kw_only=True):
    nonce: str
    code_verifier: str
    issuer_url: str
    client_id: str
    invitation: str | None = None  # the invitation's token, wrapped by the KEK


class Callback(msgspec.Struct, frozen=True, kw_only=True):
    """The query of the upstream's redirect back (OIDC Core 3.1.2.5, 3.1.2.6; RFC 9207)."""

    state: str | None = None
    code: str | None = None
    error: str | None = None
    iss: str | None = None


def browser_cookie(idp_base: str, issuer_id: str, value: str | None) -> str:
    """The Set-Cookie value of `authpi_sso`: the op session cookie's attributes (HttpOnly,
    SameSite=Lax, the issuer's path, Secure off loopback), for as long as a sign-in waits; None
    clears it."""
    return cookie_header(idp_base, issuer_id, value, name=COOKIE, max_age=LOGIN_TTL_S)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def pkce_challenge(verifier: str) -> str:
    raw = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def callback_url(idp_base: str, issuer_id: str) -> str:
    """The redirect URI an organization registers at its upstream for this issuer."""
    return f"{issuer_url(idp_base, issuer_id)}/sso/callback"


def with_params(url: str, params: dict[str, str]) -> str:
    return f"{url}{'&' if urlsplit(url).query else '?'}{urlencode(params)}"


def token_kid(raw: str) -> str | None:
    try:
        kid = jwt.get_unverified_header(raw).get("kid")
    except jwt.PyJWTError:
        return None
    return kid if isinstance(kid, str) else None


class SsoStates:
    """The `sso_logins` rows: saved at start, consumed once at the callback."""

    def __init__(self, pool: AsyncConnectionPool, schema: str) -> None:
        self.pool = pool
        self._insert = render(
            "INSERT INTO {schema}.sso_logins (state_sha256, issuer_id, org_id, flow_id,"
            " browser_sha256, data, expires_at) VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s)",
            schema=schema,
        )
        self._consume = render(
            "UPDATE {schema}.sso_logins SET used_at = %(now)s WHERE state_sha256 = %(state)s"
            " AND issuer_id = %(issuer)s AND used_at IS NULL AND expires_at > %(now)s"
            " RETURNING org_id, flow_id, browser_sha256, data::text",
            schema=schema,
        )
        self._used = render(
            "SELECT 1 FROM {schema}.sso_logins WHERE state_sha256 = %s AND issuer_id = %s"
            " AND used_at IS NOT NULL",
            schema=schema,
        )

    async def save(
        self, state: str, issuer_id: str, org_id: str, flow_id: str | None, browser: str,
        pending: _Pending, expires_at: int,
    ) -> None:  # fmt: skip
        async with self.pool.connection() as conn:
            await conn.execute(self._insert, [
                digest(state), issuer_id, org_id, flow_id, digest(browser), jsonb.dumps(pending),
                expires_at])  # fmt: skip

    async def consume(
        self, issuer_id: str, state: str, now: int
    ) -> tuple[str, str | None, str, _Pending] | None:
        async with self.pool.connection() as conn:
            params = {"now": now, "state": digest(state), "issuer": issuer_id}
            cur = await conn.execute(self._consume, params)
            row = await cur.fetchone()
        if row is None:
            return None
        return row[0], row[1], row[2], _pending.decode(row[3])

    async def used(self, issuer_id: str, state: str) -> bool:
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._used, [digest(state), issuer_id])
            return await cur.fetchone() is not None


_pending = msgspec.json.Decoder(_Pending)


class SsoLogin:
    def __init__(
        self,
        *,
        idp_base: str,
        clock: Clock,
        ids: Ids,
        kek: Kek,
        queries: SsoQueries,
        states: SsoStates,
        upstream: UpstreamOidc,
    ) -> None:
        self.idp_base = idp_base
        self.clock = clock
        self.ids = ids
        self.kek = kek
        self.queries = queries
        self.states = states
        self.upstream = upstream

    async def _connection(self, issuer_id: str, org_id: str) -> tuple[SsoConnection, str, str]:
        """The organization's live connection, its issuer URL and client id."""
        found = await self.queries.connection(issuer_id, org_id)
        if found is None or not found.enabled:
            raise SsoRefused(
                "sso.unavailable", "Single sign-on is not available for this organization.", 404
            )
        url, client_id = found.sso.get("issuer_url"), found.sso.get("client_id")
        if not isinstance(url, str) or not isinstance(client_id, str):
            raise SsoRefused(
                "sso.unconfigured", "This organization's single sign-on is not configured.", 404
            )
        return found, url, client_id

    async def route(self, issuer_id: str, email: str) -> SsoRouteRow | None:
        """The organization an address's domain routes to (as discovery answers), or None."""
        domain = email_domain(email)
        return None if domain is None else await self.queries.route(issuer_id, domain)

    async def available(self, issuer_id: str) -> bool:
        return await self.queries.any_route(issuer_id)

    async def start(
        self,
        issuer_id: str,
        org_id: str,
        *,
        flow: Flow | None,
        login_hint: str | None,
        invitation: str | None = None,
    ) -> Started:
        connection, url, client_id = await self._connection(issuer_id, org_id)
        try:
            meta = await self.upstream.metadata(url)
        except UpstreamError as exc:
            raise SsoRefused(
                exc.reason, f"The identity provider is unavailable: {exc}.", 502
            ) from None
        state, nonce, verifier, browser = (self.ids.secret(32) for _ in range(4))
        scopes = connection.sso.get("scopes") or ["openid"]
        params = {
            "response_type": "code", "client_id": client_id,
            "redirect_uri": callback_url(self.idp_base, issuer_id),
            "scope": " ".join(str(s) for s in scopes), "state": state, "nonce": nonce,
            "code_challenge": pkce_challenge(verifier), "code_challenge_method": "S256",
        }  # fmt: skip
        if login_hint and len(login_hint) <= 320:
            params["login_hint"] = login_hint
        if flow is not None and "login" in flow.prompt:
            params["prompt"] = "login"
        if flow is not None and flow.max_age is not None:
            params["max_age"] = str(flow.max_age)
        # An invitation's token (never kept in clear) goes back to the portal at the callback.
        wrapped = (
            None
            if invitation is None
            else self.kek.wrap(invitation.encode(), invitation_context(state))
        )
        pending = _Pending(
            nonce=nonce, code_verifier=verifier, issuer_url=url, client_id=client_id,
            invitation=wrapped,
        )  # fmt: skip
        expires_at = self.clock.now_ms() + LOGIN_TTL_S * 1000
        flow_id = flow.id if flow is not None else None
        await self.states.save(state, issuer_id, org_id, flow_id, browser, pending, expires_at)
        return Started(location=with_params(meta.authorization_endpoint, params), browser=browser)

    async def finish(self, issuer_id: str, answer: Callback, browser: str | None) -> Finished:
        if not answer.state or len(answer.state) > MAX_PARAM:
            raise SsoRefused("sso.state_missing", "This sign-in link is incomplete.")
        consumed = await self.states.consume(issuer_id, answer.state, self.clock.now_ms())
        if consumed is None:
            replayed = await self.states.used(issuer_id, answer.state)
            raise SsoRefused(
                "sso.state_replayed" if replayed else "sso.state_unknown",
                "This sign-in has expired or was already used. Start again.",
                replayed=replayed,
            )
        org_id, flow_id, browser_sha256, pending = consumed
        if browser is None or not hmac.compare_digest(digest(browser), browser_sha256):
            raise SsoRefused(
                "sso.browser_mismatch", "This sign-in was started in another browser.", 403
            )
        if answer.error is not None:
            error = answer.error[:100]
            raise SsoRefused(
                f"sso.upstream_error:{error}",
                f"The identity provider did not sign you in ({error}).",
                403,
            )
        if not answer.code or len(answer.code) > MAX_PARAM:
            raise SsoRefused("sso.code_missing", "The identity provider sent no code.")
        connection, url, client_id = await self._connection(issuer_id, org_id)
        if (url, client_id) != (pending.issuer_url, pending.client_id):
            raise SsoRefused(
                "sso.reconfigured", "The organization's single sign-on changed. Start again."
            )
        if answer.iss is not None and answer.iss != url:
            raise SsoRefused("sso.iss_mismatch", "The answer came from another identity provider.")
        try:
            claims = await self._claims(connection, url, client_id, answer.code, pending)
        except UpstreamError as exc:
            raise SsoRefused(exc.reason, f"The identity provider failed: {exc}.", 502) from None
        except IdTokenRefused as exc:
            raise SsoRefused(exc.reason, f"The sign-in was refused: {exc}.", 401) from None
        identity = self._identity(connection, url, claims)
        invitation = (
            None
            if pending.invitation is None
            else self.kek.unwrap(pending.invitation, invitation_context(answer.state)).decode()
        )
        return Finished(org_id=org_id, flow_id=flow_id, identity=identity, invitation=invitation)

    def _secret(self, connection: SsoConnection) -> str | None:
        if connection.client_secret_sealed is None:
            return None
        context = sso_secret_context(connection.org_id)
        return self.kek.unwrap(connection.client_secret_sealed, context).decode()

    async def _claims(
        self, connection: SsoConnection, url: str, client_id: str, code: str, pending: _Pending
    ) -> dict[str, Any]:
        meta = await self.upstream.metadata(url)
        method = connection.sso.get("token_endpoint_auth_method")
        tokens = await self.upstream.exchange(
            meta, code=code, redirect_uri=callback_url(self.idp_base, connection.issuer_id),
            code_verifier=pending.code_verifier, client_id=client_id,
            client_secret=self._secret(connection),
            auth_method=method if isinstance(method, str) else "client_secret_basic",
        )  # fmt: skip
        raw = tokens.get("id_token")
        if not isinstance(raw, str):
            raise IdTokenRefused("id_token.missing", "the identity provider sent no ID token")
        keys = await self.upstream.keys(meta, token_kid(raw))
        expected = Expected(
            issuer=meta.issuer, client_id=client_id, nonce=pending.nonce,
            now_s=self.clock.now_ms() // 1000,
            algorithms=meta.id_token_signing_alg_values_supported,
        )  # fmt: skip
        claims = check_id_token(raw, keys, expected)
        access_token = tokens.get("access_token")
        if "email" not in claims and meta.userinfo_endpoint and isinstance(access_token, str):
            info = await self.upstream.userinfo(meta, access_token)
            if info.get("sub") != claims["sub"]:
                raise IdTokenRefused(
                    "userinfo.subject", "the userinfo answer names another subject"
                )
            claims = {**info, **claims}
        return claims

    def _identity(self, connection: SsoConnection, url: str, claims: dict[str, Any]) -> SsoIdentity:
        email = claims.get("email")
        if not isinstance(email, str) or len(email) > 320:
            raise SsoRefused(
                "sso.no_email", "The identity provider did not say which address signed in.", 401
            )
        if claims.get("email_verified") is False:
            raise SsoRefused(
                "sso.email_unverified", "The identity provider has not verified this address.", 401
            )
        domain = email_domain(email)
        if domain is None or domain not in connection.domains:
            raise SsoRefused(
                "sso.domain_unverified",
                "This address is not in a domain the organization verified for single sign-on.",
                403,
            )
        profile = {k: v for k in ("name", "given_name", "family_name")
                   if isinstance(v := claims.get(k), str)}  # fmt: skip
        return SsoIdentity(
            protocol="oidc", external_issuer=url, external_subject=str(claims["sub"]),
            email=email.strip().lower(), profile=profile,
        )  # fmt: skip
