"""What each portal page does, without the web framework: sign-in with a password, sign-up
under the issuer's signup policy, consent, email verification, password reset and login links
(idp-api.md 10.3, 12.6). Each step answers a `Page` to render or a `Redirect` to follow; the
api layer (authpi.token.api.portal) turns them into HTTP.

Rules kept here:
- Answers never tell which usernames exist: an unknown username costs one Argon2id verification
  like a known one, counts towards the same lockout, and the mail-sending forms answer the same
  whether or not an account exists.
- 5 failed verifications of one credential lock it for 15 minutes (idp-api.md 1.5), keyed by
  (issuer, username hash); a locked credential gets a page that says so, not a 429.
- The user's status is checked only after the password is right, so it does not leak either.
- Sign-up does not tell whether an address has an account: when it has one, nothing is created,
  the page is the same "Check your email" page a new account gets when the issuer requires a
  verified address, and the address's owner gets a mail (through the outbox, within the
  requested-mail limit) saying someone tried to sign up with it, with links to sign in and to
  reset the password. An issuer that does not require a verified address signs a new account in
  at once, which a taken address cannot be; such an issuer keeps that difference (sign-up then
  leads straight into the application), and one that must not reveal its users sets
  settings.access.require_verified_email.
- Mail sent on request (reset, login link) is limited to 5 per address in 15 minutes.
- The mail-sending forms (forgot password, login link) answer before anything about the address
  is looked up: the lookup, the one-time token, its event and the mail are a job for the outbox
  (portal.outbox), queued the same way for every well-formed address, so neither the page nor
  its timing depends on whether an account exists. Sign-up's verification mail goes the same
  way, so a slow mail server never holds up a page.
- Opening a mailed link with GET never signs anyone in and never uses up a login link or a reset
  link: mail scanners fetch links before the person reads the mail. A login link shows a
  confirm page ("Continue as ...") whose CSRF-protected POST uses the link and signs in; a reset
  link shows the form whose POST uses it. A verify-email link does verify on GET, deliberately:
  verification signs no one in and changes nothing but the flag, and a fetch of the link, by the
  person or by their mail provider's scanner, proves the mailbox received it, which is all that
  verification claims. Its page then leads back to sign-in (and to the authorization the person
  signed up in, while it lasts), never straight into a session.
- An issuer with settings.access.require_verified_email (default false) completes no sign-in of
  a user whose address is unverified: a right password gets a page that says a verification
  link was sent (it is sent again, within the requested-mail limit) and the authorization waits
  until the person verifies and signs in again. A login link proves the address itself."""

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
from authpi.crypto.passwords import Passwords, policy_problem
from authpi.errors import Conflict, TemporarilyUnavailable, Unprocessable
from authpi.observability import get_logger
from authpi.token.adapters.registry import Registry
from authpi.token.caches.lockouts import Lockouts
from authpi.token.domain.credential_commands import (
    ConsumeLoginLink,
    RecordReplay,
    RecordVerification,
    RehashPassword,
    RequestLoginLink,
    RequestPasswordReset,
    ResetPassword,
    SetPassword,
    VerifyEmail,
)
from authpi.token.endpoints.authorize import Device, FlowGone, access_requires_verified_email
from authpi.token.handlers.credentials import Credentials
from authpi.token.handlers.sessions import Sessions
from authpi.token.portal.mail_tokens import MailTokens
from authpi.token.portal.outbox import Outbox
from authpi.token.portal.pages import branding
from authpi.token.portal.ports import Interactions, Mailer, MailMessage
from authpi.token.queries.people import People
from authpi.token.queries.portal import CredentialRow, IssuerRow, PortalQueries
from authpi.token.queries.sessions import SessionQueries

log = get_logger("authpi.token.portal")

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,253}\.[^@\s.]{1,63}")
MAX_EMAIL_CHARS = 254
MAX_NAME_CHARS = 200
SIGNUP_MODES = ("open", "invite_only", "approval", "closed")

LOCKED = "Too many failed attempts. This account is locked for 15 minutes; try again later."
INVALID = "The email or password is incorrect."
SENT = "If an account exists for that address, we have sent it an email. Check your inbox."


class Page(msgspec.Struct, frozen=True, kw_only=True):
    template: str
    status: int = 200
    context: dict[str, Any] = {}


class Redirect(msgspec.Struct, frozen=True, kw_only=True):
    location: str
    set_session: str | None = None  # the new op session cookie value
    clear_session: bool = False


Answer = Page | Redirect


class Visit(msgspec.Struct, frozen=True, kw_only=True):
    """One browser request to the portal: the issuer, the authorization flow it belongs to (if
    any), the op session cookie and the device it comes from."""

    issuer_id: str
    flow_id: str | None = None
    session_cookie: str | None = None
    device: Device = Device()


class FlowGoneError(Exception):
    """The authorization request expired or never existed."""


def normalise_email(raw: str) -> str:
    return raw.strip().lower()


def valid_email(email: str) -> bool:
    return len(email) <= MAX_EMAIL_CHARS and bool(_EMAIL.fullmatch(email))


def signup_mode(settings: Mapping[str, Any]) -> str:
    """settings.access.mode (core-api.md 3.7); an issuer that says nothing is open."""
    access = settings.get("access")
    mode = access.get("mode") if isinstance(access, Mapping) else None
    if mode is None:
        return "open"
    return mode if mode in SIGNUP_MODES else "closed"


def allowed_domains(settings: Mapping[str, Any]) -> list[str] | None:
    access = settings.get("access")
    raw = access.get("allowed_domains") if isinstance(access, Mapping) else None
    if raw is None:
        return None
    if not isinstance(raw, list):
        return []  # malformed: allow nothing rather than everything
    return [d.strip().lower().lstrip("@") for d in raw if isinstance(d, str) and d.strip()]


def require_verified_email(settings: Mapping[str, Any]) -> bool:
    """settings.access.require_verified_email: false when absent; a value that is not a boolean
    requires verification (a malformed setting fails closed)."""
    return access_requires_verified_email(settings.get("access"))


def signup_refusal(settings: Mapping[str, Any]) -> str | None:
    """Why this issuer takes no sign-ups at all; None when it does."""
    match signup_mode(settings):
        case "open":
            return None
        case "invite_only":
            return "Sign-up is by invitation only. Ask an administrator to invite you."
        case "approval":
            return "Sign-up is not available here at the moment. Contact an administrator."
        case _:
            return "Sign-up is closed. Contact an administrator for access."


def domain_refusal(settings: Mapping[str, Any], email: str) -> str | None:
    domains = allowed_domains(settings)
    if domains is None:
        return None
    if email.rpartition("@")[2] in domains:
        return None
    return "Sign-up is limited to addresses of approved domains."


def links(issuer_id: str, flow_id: str | None) -> dict[str, str]:
    base = f"/{quote(issuer_id, safe='')}"
    query = f"?{urlencode({'flow': flow_id})}" if flow_id else ""
    return {
        "login": f"{base}/login{query}",
        "signup": f"{base}/signup{query}",
        "forgot": f"{base}/password/forgot{query}",
        "login_link": f"{base}/login-link{query}",
        "consent": f"{base}/consent{query}",
    }


def message(title: str, text: str, status: int = 200, **extra: Any) -> Page:
    return Page(
        template="message.html", status=status,
        context={"title": title, "message": text, "link": None, **extra},
    )  # fmt: skip


BLOCKED = message("Account unavailable", "This account is blocked. Contact an administrator.", 403)
ISSUER_GONE = message(
    "Not found", "This sign-in page does not exist or is no longer available.", 404
)
FLOW_GONE = message(
    "This sign-in request has expired",
    "Return to the application you came from and start again.",
    400,
)


class Portal:
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
        mailer: Mailer,
        outbox: Outbox,
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
        self.mailer = mailer
        self.outbox = outbox
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

    # Sign-in

    async def login_form(self, visit: Visit, issuer: IssuerRow) -> Page:
        flow = await self.flow(visit)
        if flow is None and visit.session_cookie:
            session = await self.interactions.browser_session(issuer.id, visit.session_cookie)
            if session is not None:
                return message(
                    "You are signed in",
                    f"You are signed in to {issuer_name(issuer)}. Go back to the application you"
                    " want to use and choose to sign in there: it continues without asking for"
                    " your password again.",
                )
        return self._login_page(visit, issuer, flow, email=(flow and flow.login_hint) or "")

    def _login_page(
        self,
        visit: Visit,
        issuer: IssuerRow,
        flow: Any,
        *,
        email: str = "",
        error: str | None = None,
        status: int = 200,
    ) -> Page:
        return Page(
            template="login.html", status=status,
            context={
                "title": "Sign in", "email": email, "error": error, "notice": None,
                "client_name": flow.client_name if flow else None,
                "signup_open": signup_refusal(issuer.settings) is None,
                "links": links(visit.issuer_id, visit.flow_id),
            },
        )  # fmt: skip

    async def login(self, visit: Visit, issuer: IssuerRow, email: str, password: str) -> Answer:
        flow = await self.flow(visit)
        email = normalise_email(email)
        if not email or not password:
            return self._login_page(visit, issuer, flow, email=email, error=INVALID, status=400)
        username_hash = self.people.username_hash(issuer.id, email)
        if self.lockouts.retry_after(issuer.id, username_hash):
            await self._failed(issuer, None, username_hash, "locked", visit)
            return self._login_page(visit, issuer, flow, email=email, error=LOCKED, status=403)
        user, cred = await self._credential_of(issuer.id, email)
        if (
            user is None
            or cred is None
            or cred.password_hash is None
            or cred.verifier_id is None
            or len(password.encode("utf-8", "replace")) > 1024
        ):
            ok = await self.passwords.verify_decoy(password)
        else:
            ok = await self.passwords.verify(self._unseal(user.id, cred.password_hash), password)
        if not ok:
            user_id = user.id if user is not None else None
            await self._failed(issuer, user_id, username_hash, "invalid_credentials", visit)
            locked = await self.lockouts.failed(issuer.id, username_hash)
            error = LOCKED if locked else INVALID
            return self._login_page(visit, issuer, flow, email=email, error=error, status=401)
        assert user is not None and cred is not None and cred.password_hash is not None
        await self.lockouts.succeeded(issuer.id, username_hash)
        if user.status != "active":
            await self._failed(issuer, user.id, username_hash, "user_blocked", visit)
            return BLOCKED
        await self._rehash_if_needed(issuer, user.id, cred.password_hash, password, visit)
        if require_verified_email(issuer.settings) and not cred.email_verified:
            await self._failed(issuer, user.id, username_hash, "email_unverified", visit)
            return self._verification_pending(visit, issuer, user, email)
        await self.credentials.record(
            RecordVerification(
                issuer_id=issuer.id, user_id=user.id, succeeded=True, method="password",
                verifier_id=cred.verifier_id, client_id=flow.client_id if flow else None,
                at=self.clock.now_ms(),
            ),
            self._meta(issuer, visit, user.id),
        )  # fmt: skip
        return await self._signed_in(visit, issuer, flow, user.id, "password")

    async def _credential_of(self, issuer_id: str, email: str) -> tuple[Any, CredentialRow | None]:
        """The user behind `email` and its credential row (None: no user, or no row)."""
        async with self.pool.connection() as conn:
            user = await self.people.user_by_username(conn, issuer_id, email)
            if user is None:
                return None, None
            return user, await self.queries.credential(conn, user.id)

    def _verification_pending(self, visit: Visit, issuer: IssuerRow, user: Any, email: str) -> Page:
        """The issuer requires a verified address before sign-in completes: mail the link again
        (within the requested-mail limit) and say so. Nothing continues until the address is
        verified and the person signs in again."""
        if user.username_type == "email" and email:
            self.outbox.submit(
                "verify-email", lambda: self._resend_verification(issuer, user.id, email, visit)
            )
            text = (
                f"{issuer_name(issuer)} needs a verified email address before you can sign in."
                f" We have sent a verification link to {email}. Open it, then sign in again."
            )
        else:
            text = (
                f"{issuer_name(issuer)} needs a verified email address before you can sign in,"
                " and this account has none. Contact an administrator."
            )
        page = message("Verify your email to continue", text, 403)
        link = {"href": links(issuer.id, visit.flow_id)["login"], "label": "Back to sign in"}
        return msgspec.structs.replace(page, context={**page.context, "link": link})

    async def _rehash_if_needed(
        self, issuer: IssuerRow, user_id: str, sealed: str, password: str, visit: Visit
    ) -> None:
        if not self.passwords.needs_rehash(self._unseal(user_id, sealed)):
            return
        new = self._seal(user_id, await self.passwords.hash(password))
        await self.credentials.execute(
            RehashPassword(
                issuer_id=issuer.id, user_id=user_id, sealed_hash=new, at=self.clock.now_ms()
            ),
            self._meta(issuer, visit, user_id),
        )

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
        self, visit: Visit, issuer: IssuerRow, flow: Any, user_id: str, method: str
    ) -> Redirect:
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

    # Sign-up

    async def signup_form(self, visit: Visit, issuer: IssuerRow) -> Page:
        flow = await self.flow(visit)
        refusal = signup_refusal(issuer.settings)
        return self._signup_page(visit, flow, error=refusal, status=403 if refusal else 200)

    def _signup_page(
        self,
        visit: Visit,
        flow: Any,
        *,
        email: str = "",
        name: str = "",
        error: str | None = None,
        status: int = 200,
        allowed: bool | None = None,
    ) -> Page:
        return Page(
            template="signup.html", status=status,
            context={
                "title": "Create your account", "email": email, "name": name, "error": error,
                "notice": None, "client_name": flow.client_name if flow else None,
                "allowed": allowed if allowed is not None else status != 403,
                "links": links(visit.issuer_id, visit.flow_id),
            },
        )  # fmt: skip

    async def signup(
        self, visit: Visit, issuer: IssuerRow, email: str, password: str, name: str
    ) -> Answer:
        flow = await self.flow(visit)
        refusal = signup_refusal(issuer.settings)
        if refusal:
            return self._signup_page(visit, flow, error=refusal, status=403)
        email, name = normalise_email(email), name.strip()
        problem = self._signup_problem(issuer, email, password, name)
        if problem is not None:
            status = 403 if problem.startswith("Sign-up is limited") else 400
            return self._signup_page(
                visit, flow, email=email, name=name, error=problem, status=status, allowed=True
            )
        profile: dict[str, Any] = {"display_name": name} if name else {}
        try:
            user = await self.registry.register(
                account_id=issuer.account_id, issuer_id=issuer.id, username_type="email",
                username=email, profile=profile,
            )  # fmt: skip
        except Conflict:  # the address has an account: answer as for a new one, mail its owner
            self.outbox.submit(
                "signup-taken", lambda: self._send_signup_taken(visit, issuer, email)
            )
            return self._check_your_email(issuer, visit, email)
        except Unprocessable:
            return self._signup_page(
                visit, flow, email=email, name=name, status=400, allowed=True,
                error="Check your name and email: they contain characters we cannot store.",
            )  # fmt: skip
        except TemporarilyUnavailable:
            return self._signup_page(
                visit, flow, email=email, name=name, status=503, allowed=True,
                error="We could not create your account just now. Try again in a moment.",
            )  # fmt: skip
        now = self.clock.now_ms()
        await self.credentials.execute(
            SetPassword(
                issuer_id=issuer.id, user_id=user.id, verifier_id=self.ids.new("vrf"),
                sealed_hash=self._seal(user.id, await self.passwords.hash(password)), at=now,
            ),
            self._meta(issuer, visit, user.id),
        )  # fmt: skip
        self.outbox.submit(
            "verify-email",
            lambda: self._send_verification(issuer, user.id, email, visit.flow_id),
        )
        if require_verified_email(issuer.settings):
            return self._check_your_email(issuer, visit, email)
        await self.credentials.record(
            RecordVerification(
                issuer_id=issuer.id, user_id=user.id, succeeded=True, method="password",
                client_id=flow.client_id if flow else None, at=now,
            ),
            self._meta(issuer, visit, user.id),
        )  # fmt: skip
        return await self._signed_in(visit, issuer, flow, user.id, "password")

    def _check_your_email(self, issuer: IssuerRow, visit: Visit, email: str) -> Page:
        """What a sign-up answers when it does not sign in: the same page whether the account was
        just created or the address already had one (the owner then gets a mail about it)."""
        page = message(
            "Check your email",
            "We have sent you a message. Open the link in it to verify your address, then sign in.",
            sent_to=email,
        )
        link = {"href": links(issuer.id, visit.flow_id)["login"], "label": "Sign in"}
        return msgspec.structs.replace(page, context={**page.context, "link": link})

    async def _send_signup_taken(self, visit: Visit, issuer: IssuerRow, email: str) -> None:
        """Run by the outbox when a sign-up named an address that has an account: tell its owner,
        with the ways in, within the requested-mail limit. Nothing is created or changed."""
        if not await self._mail_allowed(issuer.id, email):
            return
        login = f"{self.idp_base}{links(issuer.id, visit.flow_id)['login']}"
        forgot = f"{self.idp_base}{links(issuer.id, visit.flow_id)['forgot']}"
        await self._mail(
            email,
            f"Someone tried to sign up for {issuer_name(issuer)} with your address",
            f"Someone tried to create a {issuer_name(issuer)} account with this email address,"
            " which already has an account. No new account was created and nothing changed.\n\n"
            f"If it was you, sign in instead:\n\n{login}\n\n"
            f"If you forgot your password, choose a new one:\n\n{forgot}\n\n"
            "If it was not you, you can ignore this message.\n",
        )

    def _signup_problem(
        self, issuer: IssuerRow, email: str, password: str, name: str
    ) -> str | None:
        if not valid_email(email):
            return "Enter a valid email address."
        refusal = domain_refusal(issuer.settings, email)
        if refusal:
            return refusal
        if len(name) > MAX_NAME_CHARS or any(ord(c) < 0x20 for c in name):
            return "Enter a shorter name."
        return policy_problem(password)

    async def _send_verification(
        self, issuer: IssuerRow, user_id: str, email: str, flow_id: str | None
    ) -> None:
        """A verify-email link (run by the outbox). It remembers the authorization the person
        came from, so that the verified page can lead back to it."""
        token, _ = await self.mail_tokens.issue("verify-email", issuer.id, user_id, flow_id)
        link = self._link(issuer.id, "verify-email", token)
        brand = issuer_name(issuer)
        await self._mail(
            email,
            f"Verify your email for {brand}",
            f"Welcome to {brand}.\n\nConfirm your email address by opening this link:\n\n{link}\n\n"
            "If you did not create an account, you can ignore this message.\n",
        )

    async def _resend_verification(
        self, issuer: IssuerRow, user_id: str, email: str, visit: Visit
    ) -> None:
        """Again after a sign-in that needs a verified address, within the requested-mail
        limit (5 per address in 15 minutes)."""
        if await self._mail_allowed(issuer.id, email):
            await self._send_verification(issuer, user_id, email, visit.flow_id)

    # Consent

    async def consent_form(self, visit: Visit, issuer: IssuerRow) -> Answer:
        flow = await self.flow(visit)
        if flow is None:
            return FLOW_GONE
        session = await self.interactions.browser_session(issuer.id, visit.session_cookie)
        if session is None:
            return Redirect(location=links(issuer.id, visit.flow_id)["login"])
        return Page(
            template="consent.html",
            context={
                "title": "Allow access", "client_name": flow.client_name,
                "scopes": list(flow.scopes), "error": None, "notice": None,
                "account": await self._address_of(session.user_id),
            },
        )  # fmt: skip

    async def _address_of(self, user_id: str) -> str | None:
        """The email address a signed-in person knows their account by, if it has one."""
        async with self.pool.connection() as conn:
            user = await self.people.user(conn, user_id)
            if user is None:
                return None
            address = (await self.people.claims(conn, user, ["email"])).get("email")
        return address if isinstance(address, str) else None

    async def consent(self, visit: Visit, issuer: IssuerRow, decision: str) -> Answer:
        flow = await self.flow(visit)
        if flow is None:
            return FLOW_GONE
        session = await self.interactions.browser_session(issuer.id, visit.session_cookie)
        if session is None:
            return Redirect(location=links(issuer.id, visit.flow_id)["login"])
        if decision == "switch":  # "Not you?": end this browser's session, sign in afresh
            await self.sessions.revoke(
                issuer.id, session.id, reason="logout", by=session.user_id,
                meta=self._meta(issuer, visit, session.user_id), lenient=True,
            )  # fmt: skip
            return Redirect(location=links(issuer.id, visit.flow_id)["login"], clear_session=True)
        outcome = await self.interactions.consented(
            flow, user_id=session.user_id, granted=decision == "allow",
            cookie=visit.session_cookie,
        )  # fmt: skip
        return Redirect(
            location=outcome.redirect,
            set_session=outcome.set_cookie,
            clear_session=outcome.clear_cookie,
        )

    # Email verification (idp-api.md 10.3)

    async def verify_email(self, visit: Visit, issuer: IssuerRow, token: str) -> Page:
        redeemed = await self.mail_tokens.redeem("verify-email", issuer.id, token)
        if redeemed.status != "ok" or redeemed.token is None:
            return await self._bad_link(visit, issuer, "verify_email", redeemed.status)
        user_id = redeemed.token.user_id
        meta = self._meta(issuer, visit, user_id)
        await self.credentials.execute(
            VerifyEmail(issuer_id=issuer.id, user_id=user_id, at=self.clock.now_ms()), meta
        )
        await self.credentials.record(
            RecordVerification(
                issuer_id=issuer.id, user_id=user_id, succeeded=True, method="email_link",
                at=self.clock.now_ms(),
            ),
            meta,
        )  # fmt: skip
        text = "Thank you: your email address is verified."
        link = {"href": links(issuer.id, None)["login"], "label": "Sign in"}
        if redeemed.token.flow_id is not None:
            try:  # lead back to the authorization the person signed up in, while it lasts
                flow = await self.interactions.flow(issuer.id, redeemed.token.flow_id)
                href = links(issuer.id, redeemed.token.flow_id)["login"]
                link = {"href": href, "label": f"Continue to {flow.client_name}"}
            except FlowGone:  # finished or expired: the application starts a new one
                text += (
                    " If the application you signed up for still asks you to sign in, go back"
                    " to it and sign in there."
                )
        page = message("Email verified", text)
        return msgspec.structs.replace(page, context={**page.context, "link": link})

    # Signed out

    def signed_out(self, issuer: IssuerRow, client_id: str | None) -> Page:
        """The page after a logout without a post_logout_redirect_uri. `client_id` is the client
        the logout's ID token was issued to; the way back to it is only ever one of its
        registered post-logout URIs, never a URL from the request."""
        page = message(
            "You are signed out", "You can close this window, or sign in again.",
            link={"href": links(issuer.id, None)["login"], "label": "Sign in again"},
        )  # fmt: skip
        client = self._client(issuer.id, client_id)
        if client is None or not client.post_logout_redirect_uris:
            return page
        name = client.name or "the application"
        back = {"href": client.post_logout_redirect_uris[0], "label": f"Return to {name}"}
        return msgspec.structs.replace(
            page,
            context={
                **page.context,
                "message": f"You are signed out of {name}. You can close this window.",
                "link": back,
                "secondary": {"href": links(issuer.id, None)["login"], "label": "Sign in again"},
            },
        )

    def _client(self, issuer_id: str, client_id: str | None) -> Any:
        if not client_id or len(client_id) > 256:
            return None
        client = self.interactions.clients.get(client_id)
        if client is None or client.issuer_id != issuer_id or client.status != "active":
            return None
        return client

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

    # Password reset

    def email_form(
        self,
        visit: Visit,
        *,
        kind: str,
        email: str = "",
        error: str | None = None,
        notice: str | None = None,
        status: int = 200,
    ) -> Page:
        title, lead, button = {
            "forgot": (
                "Reset your password",
                "Enter your email and we will send you a link to choose a new password.",
                "Send reset link",
            ),
            "login-link": (
                "Sign in with a link",
                "Enter your email and we will send you a link that signs you in.",
                "Email me a link",
            ),
        }[kind]
        return Page(
            template="email_form.html", status=status,
            context={
                "title": title, "lead": lead, "button": button, "email": email,
                "error": error, "notice": notice, "links": links(visit.issuer_id, visit.flow_id),
                "sent": notice is not None,
                "again": links(visit.issuer_id, visit.flow_id)[
                    "forgot" if kind == "forgot" else "login_link"
                ],
            },
        )  # fmt: skip

    async def forgot(self, visit: Visit, issuer: IssuerRow, email: str) -> Page:
        email = normalise_email(email)
        if not valid_email(email):
            return self.email_form(
                visit, kind="forgot", email=email, error="Enter a valid email address.", status=400
            )
        self.outbox.submit("password-reset", lambda: self._send_reset(visit, issuer, email))
        return self.email_form(visit, kind="forgot", notice=SENT)

    async def _send_reset(self, visit: Visit, issuer: IssuerRow, email: str) -> None:
        """Run by the outbox for every well-formed address: a reset link to an active account,
        within the requested-mail limit; nothing otherwise."""
        user = await self._active_user(issuer.id, email)
        if user is None or not await self._mail_allowed(issuer.id, email):
            return
        token, expires_at = await self.mail_tokens.issue("password-reset", issuer.id, user.id)
        await self.credentials.execute(
            RequestPasswordReset(
                issuer_id=issuer.id, user_id=user.id, expires_at=expires_at,
                at=self.clock.now_ms(),
            ),
            self._meta(issuer, visit, user.id),
        )  # fmt: skip
        link = self._link(issuer.id, "password/reset", token)
        await self._mail(
            email,
            f"Reset your {issuer_name(issuer)} password",
            "Someone asked to reset the password of your account. To choose a new password,"
            f" open this link within 30 minutes:\n\n{link}\n\n"
            "If it was not you, ignore this message: your password stays the same.\n",
        )

    async def reset_form(self, visit: Visit, issuer: IssuerRow, token: str) -> Page:
        found = await self.mail_tokens.peek("password-reset", issuer.id, token)
        if found.status != "ok":
            return self._link_problem(found.status)  # looked at, not presented: no replay
        return self._reset_page(token)

    def _reset_page(self, token: str, error: str | None = None, status: int = 200) -> Page:
        return Page(
            template="reset.html", status=status,
            context={
                "title": "Choose a new password", "token": token, "error": error,
                "notice": None,
            },
        )  # fmt: skip

    async def reset(self, visit: Visit, issuer: IssuerRow, token: str, password: str) -> Page:
        found = await self.mail_tokens.peek("password-reset", issuer.id, token)
        if found.status != "ok":
            return await self._bad_link(visit, issuer, "password_reset", found.status)
        problem = policy_problem(password)
        if problem is not None:
            return self._reset_page(token, problem, 400)
        sealed_for = await self.passwords.hash(password)
        redeemed = await self.mail_tokens.redeem("password-reset", issuer.id, token)
        if redeemed.status != "ok" or redeemed.token is None:
            return await self._bad_link(visit, issuer, "password_reset", redeemed.status)
        user_id = redeemed.token.user_id
        async with self.pool.connection() as conn:
            user = await self.people.user(conn, user_id)
        await self.credentials.execute(
            ResetPassword(
                issuer_id=issuer.id, user_id=user_id, verifier_id=self.ids.new("vrf"),
                sealed_hash=self._seal(user_id, sealed_for),
                email_username=user is not None and user.username_type == "email",
                at=self.clock.now_ms(),
            ),
            self._meta(issuer, visit, user_id),
        )  # fmt: skip
        await self.mail_tokens.void("password-reset", user_id)
        await self._end_sessions(issuer, user_id, visit)
        if user is not None:
            await self.lockouts.succeeded(issuer.id, user.username_hash)
        page = message("Password changed", "Your password has been changed. You can now sign in.")
        link = {"href": links(issuer.id, redeemed.token.flow_id)["login"], "label": "Sign in"}
        return msgspec.structs.replace(page, context={**page.context, "link": link})

    async def _end_sessions(self, issuer: IssuerRow, user_id: str, visit: Visit) -> None:
        """After a reset, every browser signed in as the user is signed out (their rp sessions
        and refresh families end with their op sessions): whoever knew the old password loses
        what it gave them."""
        now = self.clock.now_ms()
        async with self.pool.connection() as conn:
            live = await self.session_queries.live_of_type(conn, issuer.id, user_id, "op", now)
        for session_id in live:
            await self.sessions.revoke(
                issuer.id, session_id, reason="password_reset", by=user_id,
                meta=self._meta(issuer, visit, user_id), lenient=True,
            )  # fmt: skip

    # Login links

    async def request_login_link(self, visit: Visit, issuer: IssuerRow, email: str) -> Page:
        flow = await self.flow(visit)
        email = normalise_email(email)
        if not valid_email(email):
            return self.email_form(
                visit, kind="login-link", email=email, error="Enter a valid email address.",
                status=400,
            )  # fmt: skip
        client_id = flow.client_id if flow else None
        self.outbox.submit(
            "login-link", lambda: self._send_login_link(visit, issuer, email, client_id)
        )
        return self.email_form(visit, kind="login-link", notice=SENT)

    async def _send_login_link(
        self, visit: Visit, issuer: IssuerRow, email: str, client_id: str | None
    ) -> None:
        """Run by the outbox for every well-formed address: a login link to an active account,
        within the requested-mail limit; nothing otherwise."""
        user = await self._active_user(issuer.id, email)
        if user is None or not await self._mail_allowed(issuer.id, email):
            return
        token, expires_at = await self.mail_tokens.issue(
            "login-link", issuer.id, user.id, visit.flow_id
        )
        await self.credentials.execute(
            RequestLoginLink(
                issuer_id=issuer.id, user_id=user.id, client_id=client_id,
                expires_at=expires_at, at=self.clock.now_ms(),
            ),
            self._meta(issuer, visit, user.id),
        )  # fmt: skip
        link = self._link(issuer.id, "login-link/callback", token)
        await self._mail(
            email,
            f"Your sign-in link for {issuer_name(issuer)}",
            f"Open this link within 15 minutes to sign in:\n\n{link}\n\n"
            "The link works once. If you did not ask for it, ignore this message.\n",
        )

    async def login_link_confirm(self, visit: Visit, issuer: IssuerRow, token: str) -> Page:
        """The page a login link opens: who is about to sign in and a button that does it. The
        link is only looked at here; the button's POST uses it. A mail scanner that fetches
        links before the person reads the mail thus leaves it working."""
        found = await self.mail_tokens.peek("login-link", issuer.id, token)
        if found.status != "ok" or found.token is None:
            return self._link_problem(found.status)
        async with self.pool.connection() as conn:
            user = await self.people.user(conn, found.token.user_id)
            if user is None or user.status != "active":
                return BLOCKED
            address = (await self.people.claims(conn, user, ["email"])).get("email")
        client_name = None
        if found.token.flow_id is not None:
            try:
                flow = await self.interactions.flow(issuer.id, found.token.flow_id)
                client_name = flow.client_name
            except FlowGone:
                pass
        return Page(
            template="confirm.html",
            context={
                "title": "Continue signing in", "token": token, "error": None, "notice": None,
                "address": address if isinstance(address, str) else None,
                "client_name": client_name,
            },
        )  # fmt: skip

    async def login_link(self, visit: Visit, issuer: IssuerRow, token: str) -> Answer:
        """The confirm page's POST: use the link once and sign in."""
        redeemed = await self.mail_tokens.redeem("login-link", issuer.id, token)
        if redeemed.status != "ok" or redeemed.token is None:
            return await self._bad_link(visit, issuer, "login_link", redeemed.status)
        user_id = redeemed.token.user_id
        async with self.pool.connection() as conn:
            user = await self.people.user(conn, user_id)
        meta = self._meta(issuer, visit, user_id)
        if user is None or user.status != "active":
            await self._failed(issuer, user_id, "", "user_blocked", visit, "magic_link")
            return BLOCKED
        visit = msgspec.structs.replace(visit, flow_id=redeemed.token.flow_id)
        try:
            flow = await self.flow(visit)
        except FlowGoneError:  # the authorization expired meanwhile: sign in to the portal only
            visit = msgspec.structs.replace(visit, flow_id=None)
            flow = None
        now = self.clock.now_ms()
        state = await self.credentials.execute(
            ConsumeLoginLink(
                issuer_id=issuer.id, user_id=user_id, session_id=None,
                email_username=user.username_type == "email", at=now,
            ),
            meta,
        )  # fmt: skip
        if require_verified_email(issuer.settings) and not state.email_verified:
            await self._failed(issuer, user_id, "", "email_unverified", visit, "magic_link")
            return self._verification_pending(visit, issuer, user, "")
        await self.credentials.record(
            RecordVerification(
                issuer_id=issuer.id, user_id=user_id, succeeded=True, method="magic_link",
                client_id=flow.client_id if flow else None, at=now,
            ),
            meta,
        )  # fmt: skip
        return await self._signed_in(visit, issuer, flow, user_id, "magic_link")

    # Helpers

    async def _active_user(self, issuer_id: str, email: str) -> Any:
        async with self.pool.connection() as conn:
            user = await self.people.user_by_username(conn, issuer_id, email)
        return user if user is not None and user.status == "active" else None

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
