"""What every portal flow shares: the answers a step gives (`Page`, `Redirect`), the `Visit` it
answers, the page links and messages, and `PortalBase`, which holds the portal's dependencies and
the steps common to several flows (recording a verification, signing in, mailing, sealing).

Mail sent on request (reset, login link, a sign-up with a taken address, a repeated verification
link) is limited to 5 per address in 15 minutes, counted here."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import msgspec
from psycopg_pool import AsyncConnectionPool

from authpi.contracts.base import Actor, Meta
from authpi.crypto.clock import Clock
from authpi.crypto.envelope import seal, unseal
from authpi.crypto.ids import Ids
from authpi.crypto.passwords import Passwords
from authpi.observability import get_logger
from authpi.token.adapters.registry import Registry
from authpi.token.caches.lockouts import Lockouts
from authpi.token.domain.credential_commands import RecordReplay, RecordVerification
from authpi.token.endpoints.flow import (
    Device,
    FlowGone,
    access_requires_verified_email,
    cookie_header,
)
from authpi.token.endpoints.sso_login import SsoLogin
from authpi.token.handlers.credentials import Credentials
from authpi.token.handlers.sessions import Sessions
from authpi.token.portal.mail_tokens import MailTokens
from authpi.token.portal.outbox import Outbox
from authpi.token.portal.pages import branding
from authpi.token.portal.ports import Interactions, Mailer, MailMessage
from authpi.token.portal.second_factor import (
    CHALLENGE_COOKIE,
    CHALLENGE_TTL_MS,
    Passed,
    SecondFactor,
)
from authpi.token.queries.invitations import InvitationQueries
from authpi.token.queries.people import People
from authpi.token.queries.portal import IssuerRow, PortalQueries
from authpi.token.queries.sessions import SessionQueries
from authpi.token.queries.sso import SsoRouteRow

log = get_logger("authpi.token.portal")

# One plain address: no whitespace, control characters or the separators of an address list
# (the mailer refuses those too; here the person gets a form error instead).
_ATOM = r"[^@\s\x00-\x1f\x7f,;:<>()\[\]\\\"]"
_LABEL = r"[^@\s.\x00-\x1f\x7f,;:<>()\[\]\\\"]"
_EMAIL = re.compile(rf"{_ATOM}{{1,64}}@{_ATOM}{{1,253}}\.{_LABEL}{{1,63}}")
MAX_EMAIL_CHARS = 254


class Page(msgspec.Struct, frozen=True, kw_only=True):
    template: str
    status: int = 200
    context: dict[str, Any] = {}


class Redirect(msgspec.Struct, frozen=True, kw_only=True):
    location: str
    set_session: str | None = None  # the new op session cookie value
    clear_session: bool = False
    # More Set-Cookie values (second-factor challenge, trusted device, SSO browser binding).
    cookies: list[str] = []


Answer = Page | Redirect


class Visit(msgspec.Struct, frozen=True, kw_only=True):
    """One browser request to the portal: the issuer, the authorization flow it belongs to (if
    any), the op session cookie, the device it comes from, the cookies of a second-factor
    challenge in progress and of a trusted device (portal.second_factor), and the one binding an
    SSO sign-in to this browser (portal.sso)."""

    issuer_id: str
    flow_id: str | None = None
    session_cookie: str | None = None
    device: Device = Device()
    sso_cookie: str | None = None  # binds an SSO sign-in's callback to the browser that started it
    mfa_cookie: str | None = None
    device_cookie: str | None = None
    # The token of the invitation this sign-in or sign-up accepts (portal.invitations).
    invitation: str | None = None


class FlowGoneError(Exception):
    """The authorization request expired or never existed."""


def normalise_email(raw: str) -> str:
    return raw.strip().lower()


def valid_email(email: str) -> bool:
    return len(email) <= MAX_EMAIL_CHARS and bool(_EMAIL.fullmatch(email))


def require_verified_email(settings: Mapping[str, Any]) -> bool:
    """settings.access.require_verified_email: false when absent; a value that is not a boolean
    requires verification (a malformed setting fails closed)."""
    return access_requires_verified_email(settings.get("access"))


def links(issuer_id: str, flow_id: str | None, invitation: str | None = None) -> dict[str, str]:
    """The portal's pages, each keeping the authorization request (`flow`) and, for sign-in and
    sign-up, the invitation they accept."""
    base = f"/{quote(issuer_id, safe='')}"
    flow = {"flow": flow_id} if flow_id else {}
    query = f"?{urlencode(flow)}" if flow else ""
    invited = {"invitation": invitation} if invitation else {}
    entry = f"?{urlencode({**flow, **invited})}" if flow or invited else ""
    return {
        "login": f"{base}/login{entry}",
        "signup": f"{base}/signup{entry}",
        "forgot": f"{base}/password/forgot{query}",
        "login_link": f"{base}/login-link{query}",
        "consent": f"{base}/consent{query}",
        "mfa": f"{base}/mfa{query}",
        "invitation": f"{base}/invitation?{urlencode({'token': invitation or '', **flow})}",
    }


def message(title: str, text: str, status: int = 200, **extra: Any) -> Page:
    return Page(
        template="message.html", status=status,
        context={"title": title, "message": text, "link": None, **extra},
    )  # fmt: skip


BLOCKED = message("Account unavailable", "This account is blocked. Contact an administrator.", 403)
# A signup the issuer holds for approval (core-api.md 3.10): answered at signup, whether the
# address was new or taken, and at every correct sign-in until an administrator decides.
AWAITING_APPROVAL = message(
    "Waiting for approval",
    "Your account is waiting for an administrator's approval. We will email you when it is"
    " approved; you can sign in then.",
)
ISSUER_GONE = message(
    "Not found", "This sign-in page does not exist or is no longer available.", 404
)
FLOW_GONE = message(
    "This sign-in request has expired",
    "Return to the application you came from and start again.",
    400,
)


class PortalBase:
    def __init__(
        self,
        *,
        idp_base: str,
        pool: AsyncConnectionPool,
        queries: PortalQueries,
        credentials: Credentials,
        mail_tokens: MailTokens,
        passwords: Passwords,
        hash_key: bytes,
        lockouts: Lockouts,
        mail_throttle: Lockouts,
        clock: Clock,
        ids: Ids,
        interactions: Interactions,
        sessions: Sessions,
        session_queries: SessionQueries,
        people: People,
        registry: Registry,
        invitations: InvitationQueries,
        mailer: Mailer,
        outbox: Outbox,
        second_factor: SecondFactor,
        sso: SsoLogin | None = None,
    ) -> None:
        self.idp_base = idp_base
        self.pool = pool
        self.queries = queries
        self.credentials = credentials
        self.mail_tokens = mail_tokens
        self.passwords = passwords
        self._hash_key = hash_key
        self.lockouts = lockouts
        self.mail_throttle = mail_throttle
        self.clock = clock
        self.ids = ids
        self.interactions = interactions
        self.sessions = sessions
        self.session_queries = session_queries
        self.people = people
        self.registry = registry
        self.invitations = invitations
        self.mailer = mailer
        self.outbox = outbox
        self.second_factor = second_factor
        self.sso = sso
        self._throttle_step = asyncio.Lock()

    async def issuer(self, issuer_id: str) -> IssuerRow | None:
        async with self.pool.connection() as conn:
            row = await self.queries.issuer(conn, issuer_id)
        return row if row is not None and row.status == "active" else None

    async def flow(self, visit: Visit) -> Any:
        if visit.flow_id is None:
            return None
        try:
            return await self.interactions.flow(visit.issuer_id, visit.flow_id)
        except FlowGone as exc:
            raise FlowGoneError() from exc

    async def _failed(
        self,
        issuer: IssuerRow,
        user_id: str | None,
        username_hash: str,
        reason: str,
        visit: Visit,
        method: str = "password",
    ) -> None:
        await self.credentials.record(
            RecordVerification(
                issuer_id=issuer.id, user_id=user_id, succeeded=False, method=method,
                reason=reason, username_hash=username_hash, at=self.clock.now_ms(),
            ),
            self._meta(issuer, visit, user_id),
        )  # fmt: skip

    async def _signed_in(
        self,
        visit: Visit,
        issuer: IssuerRow,
        flow: Any,
        user_id: str,
        method: str,
        landing: str | None = None,
    ) -> Answer:
        """The primary authentication passed: the second factor when the user needs one
        (portal.second_factor), on a trusted device or through the challenge page; then the
        op session. Without an authorization the browser goes to `landing` (a portal page),
        or to the sign-in page that says it is signed in (also after a challenge)."""
        gate = await self.second_factor.gate(
            issuer, user_id, method, flow_id=flow.id if flow else None,
            client_id=flow.client_id if flow else None, device_cookie=visit.device_cookie,
            meta=self._meta(issuer, visit, user_id),
        )  # fmt: skip
        if isinstance(gate, Passed):
            answer = await self._session(visit, issuer, flow, user_id, gate.method)
            if flow is None and landing is not None:
                return msgspec.structs.replace(answer, location=landing)
            return answer
        cookie = self._cookie(issuer.id, CHALLENGE_COOKIE, gate.cookie, CHALLENGE_TTL_MS // 1000)
        return Redirect(location=links(issuer.id, visit.flow_id)["mfa"], cookies=[cookie])

    def _cookie(self, issuer_id: str, name: str, value: str | None, max_age: int) -> str:
        return cookie_header(self.idp_base, issuer_id, value, name=name, max_age=max_age)

    async def _session(
        self, visit: Visit, issuer: IssuerRow, flow: Any, user_id: str, method: str
    ) -> Redirect:
        """Open (or reuse) the op session and continue the authorization, if any."""
        if flow is not None:
            outcome = await self.interactions.authenticated(
                flow, user_id=user_id, method=method, device=visit.device,
                cookie=visit.session_cookie,
            )  # fmt: skip
        else:
            outcome = await self.interactions.login_without_flow(
                issuer.id, user_id=user_id, method=method, device=visit.device,
                cookie=visit.session_cookie,
            )  # fmt: skip
        return Redirect(
            location=outcome.redirect,
            set_session=outcome.set_cookie,
            clear_session=outcome.clear_cookie,
        )

    async def _bad_link(self, visit: Visit, issuer: IssuerRow, flow: str, status: str) -> Page:
        """A link that could not be used; presenting a used one again is recorded as a replay."""
        if status == "used":
            await self.credentials.record(
                RecordReplay(
                    issuer_id=issuer.id, client_id=None, flow=flow, artifact="link",
                    at=self.clock.now_ms(),
                ),
                self._meta(issuer, visit, None),
            )  # fmt: skip
        return self._link_problem(status)

    @staticmethod
    def _link_problem(status: str) -> Page:
        if status == "used":
            return message("Link already used", "This link has already been used.", 410)
        if status == "expired":
            return message("Link expired", "This link has expired. Request a new one.", 410)
        return message("Invalid link", "This link is not valid.", 404)

    async def _sso_route(self, issuer_id: str, email: str) -> SsoRouteRow | None:
        """The organization whose verified SSO domain the address is in (discovery's answer)."""
        return None if self.sso is None else await self.sso.route(issuer_id, email)

    async def _sso_only(self, issuer_id: str, email: str) -> bool:
        """The address belongs to an organization that allows no password sign-in (sso_only):
        no password, login link or reset is of use to it."""
        route = await self._sso_route(issuer_id, email)
        return route is not None and route.sso_only

    def _sso_start(self, visit: Visit, route: SsoRouteRow, email: str) -> Redirect:
        params = {"org": route.org_id, "login_hint": email}
        if visit.flow_id is not None:
            params["flow"] = visit.flow_id
        if visit.invitation is not None:  # the SSO sign-in accepts it (portal.sso)
            params["invitation"] = visit.invitation
        base = f"{self.idp_base}/{quote(visit.issuer_id, safe='')}"
        return Redirect(location=f"{base}/sso/start?{urlencode(params)}")

    async def _active_user(self, issuer_id: str, email: str) -> Any:
        async with self.pool.connection() as conn:
            user = await self.people.user_by_username(conn, issuer_id, email)
        return user if user is not None and user.status == "active" else None

    async def _address_of(self, user_id: str) -> str | None:
        """The email address a signed-in person knows their account by, if it has one."""
        async with self.pool.connection() as conn:
            user = await self.people.user(conn, user_id)
            if user is None:
                return None
            address = (await self.people.claims(conn, user, ["email"])).get("email")
        return address if isinstance(address, str) else None

    async def _mail_allowed(self, issuer_id: str, email: str) -> bool:
        """Count one requested mail to `email`; False once 5 went out within 15 minutes (the
        page answers the same either way)."""
        username_hash = self.people.username_hash(issuer_id, email)
        async with self._throttle_step:  # the outbox's workers count one at a time
            if self.mail_throttle.retry_after(issuer_id, username_hash):
                return False
            await self.mail_throttle.failed(issuer_id, username_hash)
        return True

    def _link(self, issuer_id: str, path: str, token: str) -> str:
        return f"{self.idp_base}/{quote(issuer_id, safe='')}/{path}?{urlencode({'token': token})}"

    async def _mail(self, to: str, subject: str, text: str) -> None:
        """Send, or log that it failed and carry on: the page a person sees must not depend on
        the mail server (a refused reset request would tell that the account exists). Never
        logs the address, the body or the token."""
        try:
            await self.mailer.send(MailMessage(to=to, subject=subject, text=text))
        except Exception as exc:
            log.warning("mail.failed", subject=subject, error=type(exc).__name__)

    def _seal(self, user_id: str, argon2_hash: str) -> str:
        return seal(self._hash_key, argon2_hash.encode(), user_id.encode())

    def _unseal(self, user_id: str, sealed: str) -> str:
        return unseal(self._hash_key, sealed, user_id.encode()).decode()

    def _meta(self, issuer: IssuerRow, visit: Visit, user_id: str | None) -> Meta:
        actor = Actor(
            type="user", user_id=user_id, ip=visit.device.ip, user_agent=visit.device.user_agent
        ) if user_id else Actor(type="system", ip=visit.device.ip)  # fmt: skip
        subject = {"user_id": user_id} if user_id else {}
        return Meta(
            account_id=issuer.account_id, issuer_id=issuer.id, actor=actor, trigger="idp",
            subject=subject,
        )  # fmt: skip


def issuer_name(issuer: IssuerRow) -> str:
    return branding(issuer.name, issuer.settings).name
