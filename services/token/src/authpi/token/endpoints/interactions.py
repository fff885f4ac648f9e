"""The continuation of an authorization (idp-api.md 4, 12.1): `Interactions` runs the checks of
endpoints.authorize, turns a valid request into a login flow and carries it through the op
session, consent and the code, for /authorize itself and for the hosted login portal.

A valid request becomes a login flow (ephemeral table `login_flows`, 30 minutes): with no usable
op session the browser goes to the portal's `/{issuer_id}/login?flow=<id>`; the portal
authenticates the user and calls `Interactions.authenticated`, which opens (or reuses) the op
session and either sends the browser to the consent page or back to the client with a code.

This module is framework-free: the api/ layer (authpi.token.api.authorize) turns an `Outcome` or
an `ErrorPage` into HTTP."""

from __future__ import annotations

import hmac
from typing import Protocol
from urllib.parse import urlencode

import msgspec

from authpi.contracts.base import Actor, Meta
from authpi.contracts.sessions import Device as SessionDevice
from authpi.crypto.clock import Clock
from authpi.crypto.ids import base62_secret
from authpi.token.caches.issuer_keys import IssuerKeys
from authpi.token.endpoints.authorize import (
    RedirectError,
    client_and_redirect,
    echo_state,
    error_redirect,
    needs_login,
    validate,
    with_query,
)
from authpi.token.endpoints.discovery import issuer_url
from authpi.token.endpoints.flow import (
    Device,
    ErrorPage,
    Flow,
    FlowGone,
    Known,
    OpSession,
    Outcome,
    access_requires_verified_email,
    session_state,
)
from authpi.token.endpoints.params import Form
from authpi.token.grants.codes import CodeGrant, Codes, Flows
from authpi.token.grants.id_token import PeopleReader
from authpi.token.handlers.consents import Consents
from authpi.token.handlers.sessions import Sessions, cookie_digest, split_cookie
from authpi.token.queries.sessions import SessionQueries
from authpi.token.reactions.clients import ClientEntry

FLOW_TTL_S = 1800


def portal_url(idp_base: str, issuer_id: str, page: str, flow_id: str | None = None) -> str:
    url = f"{issuer_url(idp_base, issuer_id)}/{page}"
    return f"{url}?{urlencode({'flow': flow_id})}" if flow_id else url


def new_flow_id() -> str:
    return f"flw_{base62_secret(16)}"


class SecondFactorCheck(Protocol):
    """Whether an op session may carry its user into an authorization, given how it was
    authenticated (authpi.token.portal.second_factor)."""

    async def satisfied(self, issuer_id: str, user_id: str, auth_method: str) -> bool: ...


class Interactions:
    """The authorization's continuation, for /authorize itself and the hosted portal."""

    def __init__(
        self,
        *,
        idp_base: str,
        clock: Clock,
        issuers: Known[IssuerKeys],
        clients: Known[ClientEntry],
        flows: Flows,
        codes: Codes,
        sessions: Sessions,
        queries: SessionQueries,
        consents: Consents,
        people: PeopleReader,
        second_factor: SecondFactorCheck | None = None,
    ) -> None:
        self.idp_base = idp_base
        self.clock = clock
        self.issuers = issuers
        self.clients = clients
        self.flows = flows
        self.codes = codes
        self.sessions = sessions
        self.queries = queries
        self.consents = consents
        self.people = people
        self.second_factor = second_factor

    def issuer(self, issuer_id: str) -> IssuerKeys:
        issuer = self.issuers.get(issuer_id)
        if issuer is None or issuer.status != "active":
            raise ErrorPage("not_found", "unknown issuer", status=404)
        return issuer

    async def authorize(
        self, issuer_id: str, values: dict[str, list[str]], cookie: str | None, device: Device
    ) -> Outcome:
        """GET /{issuer_id}/authorize: an Outcome (a redirect) or ErrorPage."""
        issuer = self.issuer(issuer_id)
        form = Form(values)
        client, redirect_uri = client_and_redirect(issuer_id, form, self.clients.get)
        state = echo_state(form)
        try:
            if any(not v.isprintable() for vals in values.values() for v in vals):
                raise RedirectError("invalid_request", "a parameter has control characters")
            req = validate(issuer, client, redirect_uri, form)
        except RedirectError as exc:
            return Outcome(redirect=error_redirect(redirect_uri, exc.error, exc.description, state))
        now = self.clock.now_ms()
        flow = Flow(
            id=new_flow_id(),
            issuer_id=issuer_id,
            client_id=client.id,
            client_name=client.name or client.id,
            expires_at=now + FLOW_TTL_S * 1000,
            **msgspec.structs.asdict(req),
        )
        session = await self.browser_session(issuer_id, cookie)
        if session is not None and not await self._address_ok(issuer_id, session.user_id):
            # An op session opened before the issuer required a verified address: it does not
            # carry the user past that requirement. The portal's sign-in asks for the address
            # to be verified (and mails the link) before it continues the authorization.
            if "none" in flow.prompt:
                return self._error(flow, "login_required", "the user must verify their email")
            session = None
        if session is not None and not await self._second_factor_ok(issuer_id, session):
            # Likewise an op session opened without a second factor the user now needs (a
            # verifier enrolled since, or a policy that requires one): the portal signs in again.
            if "none" in flow.prompt:
                return self._error(flow, "login_required", "the user must pass a second factor")
            session = None
        if "none" in flow.prompt:
            if session is None or needs_login(session, [], flow.max_age, now):
                return self._error(flow, "login_required", "the user is not signed in")
            return await self._proceed(flow, client, session, interactive=False, saved=False)
        if needs_login(session, flow.prompt, flow.max_age, now) or session is None:
            await self.flows.save(flow.id, issuer_id, flow, flow.expires_at)
            return Outcome(redirect=portal_url(self.idp_base, issuer_id, "login", flow.id))
        # prompt=select_account: one account per browser here, so there is nothing to choose
        # (idp-api.md 14 #32).
        return await self._proceed(flow, client, session, interactive=True, saved=False)

    async def flow(self, issuer_id: str, flow_id: str) -> Flow:
        raw = await self.flows.load(flow_id, issuer_id, self.clock.now_ms())
        if raw is None:
            raise FlowGone(flow_id)
        return _flow.decode(raw)

    async def browser_session(self, issuer_id: str, cookie: str | None) -> OpSession | None:
        """The browser's op session when its cookie names a usable one of this issuer."""
        parsed = split_cookie(cookie)
        if parsed is None:
            return None
        session_id, secret = parsed
        row = await self.queries.session(None, session_id)
        if (
            row is None
            or row.type != "op"
            or row.issuer_id != issuer_id
            or row.cookie_sha256 is None
            or not hmac.compare_digest(row.cookie_sha256, cookie_digest(secret))
            or not row.usable(self.clock.now_ms())
        ):
            return None
        return OpSession(
            id=row.id,
            issuer_id=row.issuer_id,
            account_id=row.account_id,
            user_id=row.user_id,
            auth_time=row.auth_time,
            auth_method=row.auth_method,
            browser_state=row.cookie_sha256,
            expires_at=row.expires_at,
        )

    async def authenticated(
        self, flow: Flow, *, user_id: str, method: str, device: Device, cookie: str | None
    ) -> Outcome:
        """The portal authenticated `user_id` for `flow`: open (or reuse, unless prompt=login or
        max_age asks for a fresh authentication) the op session, then consent or the code."""
        issuer = self.issuer(flow.issuer_id)
        client = self._client(flow)
        session, set_cookie = await self._op_session(
            issuer,
            user_id,
            method,
            device,
            cookie,
            fresh="login" in flow.prompt or flow.max_age is not None,
        )
        outcome = await self._proceed(flow, client, session, interactive=True, saved=True)
        return msgspec.structs.replace(outcome, set_cookie=set_cookie)

    async def consented(
        self, flow: Flow, *, user_id: str, granted: bool, cookie: str | None
    ) -> Outcome:
        """The user's answer on the consent page; a refusal is `access_denied`."""
        session = await self.browser_session(flow.issuer_id, cookie)
        if (
            session is None
            or session.user_id != user_id
            or not await self._second_factor_ok(flow.issuer_id, session)
        ):
            # The consent page is no way around the sign-in /authorize asked for: a session
            # without a second factor its user now needs signs in again.
            return Outcome(redirect=portal_url(self.idp_base, flow.issuer_id, "login", flow.id))
        if not granted:
            if not await self.flows.finish(flow.id, flow.issuer_id):
                raise FlowGone(flow.id)
            return self._error(flow, "access_denied", "the user denied the request")
        issuer = self.issuer(flow.issuer_id)
        await self.consents.grant(
            issuer_id=flow.issuer_id,
            user_id=user_id,
            client_id=flow.client_id,
            scopes=flow.scopes,
            meta=_user_meta(issuer, user_id),
        )
        return await self._code(flow, session, saved=True)

    def consent_needed(self, flow: Flow, consented: set[str]) -> bool:
        return "consent" in flow.prompt or not set(flow.scopes) <= consented

    async def login_without_flow(
        self, issuer_id: str, *, user_id: str, method: str, device: Device, cookie: str | None
    ) -> Outcome:
        """A sign-in with no authorization behind it (e.g. a login link): the op session only;
        the browser goes to the portal's login page, which shows the signed-in state."""
        issuer = self.issuer(issuer_id)
        _, set_cookie = await self._op_session(issuer, user_id, method, device, cookie, fresh=False)
        return Outcome(
            redirect=portal_url(self.idp_base, issuer_id, "login"), set_cookie=set_cookie
        )

    def _client(self, flow: Flow) -> ClientEntry:
        client = self.clients.get(flow.client_id)
        if client is None or client.status != "active" or client.issuer_id != flow.issuer_id:
            raise ErrorPage("invalid_client", "the client is no longer available")
        return client

    async def _op_session(
        self,
        issuer: IssuerKeys,
        user_id: str,
        method: str,
        device: Device,
        cookie: str | None,
        *,
        fresh: bool,
    ) -> tuple[OpSession, str | None]:
        current = await self.browser_session(issuer.issuer_id, cookie)
        if current is not None and current.user_id == user_id and not fresh:
            return current, None
        session_id, value, expires_at = await self.sessions.open_op(
            issuer_id=issuer.issuer_id,
            account_id=issuer.account_id,
            user_id=user_id,
            method=method,
            device=SessionDevice(user_agent=device.user_agent, ip=device.ip),
            meta=_user_meta(issuer, user_id, device),
        )
        now = self.clock.now_ms()
        session = OpSession(
            id=session_id,
            issuer_id=issuer.issuer_id,
            account_id=issuer.account_id,
            user_id=user_id,
            auth_time=now,
            auth_method=method,
            browser_state=cookie_digest(value.partition(".")[2]),
            expires_at=expires_at,
        )
        return session, value

    async def _second_factor_ok(self, issuer_id: str, session: OpSession) -> bool:
        if self.second_factor is None:
            return True
        return await self.second_factor.satisfied(issuer_id, session.user_id, session.auth_method)

    async def _address_ok(self, issuer_id: str, user_id: str) -> bool:
        """False when the issuer requires a verified address (settings.access.
        require_verified_email) and the user's is not verified."""
        async with self.queries.pool.connection() as conn:
            check = await self.queries.email_check(conn, issuer_id, user_id)
        if check is None:
            return True  # an unknown issuer was refused before this
        access, verified = check
        return verified or not access_requires_verified_email(access)

    async def _proceed(
        self, flow: Flow, client: ClientEntry, session: OpSession, *, interactive: bool, saved: bool
    ) -> Outcome:
        """After authentication: the user active, the selected org available (4.2 step 9),
        consent (step 10), then the code."""
        async with self.queries.pool.connection() as conn:
            user = await self.people.user(conn, session.user_id)
            if user is None or user.status != "active":
                await self._drop(flow, saved)
                return self._error(flow, "user_blocked", "the user is not active")
            if flow.org is not None and not await self.people.is_active_member(
                conn, session.user_id, flow.org, client.organizations
            ):
                await self._drop(flow, saved)
                return self._error(
                    flow, "access_denied", "the user is not an active member of that organization"
                )
            consented = await self.queries.consented_scopes(conn, session.user_id, client.id)
        if self.consent_needed(flow, consented):
            if not interactive:
                return self._error(flow, "consent_required", "the user has not consented")
            if not saved:
                await self.flows.save(flow.id, flow.issuer_id, flow, flow.expires_at)
            return Outcome(redirect=portal_url(self.idp_base, flow.issuer_id, "consent", flow.id))
        return await self._code(flow, session, saved=saved)

    async def _drop(self, flow: Flow, saved: bool) -> None:
        if saved:
            await self.flows.finish(flow.id, flow.issuer_id)

    async def _code(self, flow: Flow, session: OpSession, *, saved: bool) -> Outcome:
        """Finish the flow (once: a replayed continuation is FlowGone) and send the code."""
        if saved and not await self.flows.finish(flow.id, flow.issuer_id):
            raise FlowGone(flow.id)
        now = self.clock.now_ms()
        grant = CodeGrant(
            issuer_id=flow.issuer_id,
            account_id=session.account_id,
            client_id=flow.client_id,
            redirect_uri=flow.redirect_uri,
            redirect_uri_given=flow.redirect_uri_given,
            code_challenge=flow.code_challenge,
            scopes=flow.scopes,
            nonce=flow.nonce,
            resources=flow.resources,
            org=flow.org,
            op_session_id=session.id,
            user_id=session.user_id,
            auth_time=session.auth_time,
            auth_method=session.auth_method,
        )
        code = await self.codes.issue(None, grant, now)
        params = {"code": code}
        if flow.state is not None:
            params["state"] = flow.state
        params["session_state"] = session_state(
            flow.client_id, flow.redirect_uri, session.browser_state, base62_secret(8)
        )
        return Outcome(redirect=with_query(flow.redirect_uri, params))

    def _error(self, flow: Flow, error: str, description: str) -> Outcome:
        return Outcome(redirect=error_redirect(flow.redirect_uri, error, description, flow.state))


_flow = msgspec.json.Decoder(Flow)


def _user_meta(issuer: IssuerKeys, user_id: str, device: Device | None = None) -> Meta:
    return Meta(
        account_id=issuer.account_id,
        issuer_id=issuer.issuer_id,
        actor=Actor(
            type="user",
            user_id=user_id,
            ip=device.ip if device else None,
            user_agent=device.user_agent if device else None,
        ),
        trigger="idp",
        subject={"user_id": user_id},
    )
