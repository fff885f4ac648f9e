"""Recovery by mail: forgot and reset password, login links and their confirm step.

- The mail-sending forms (forgot password, login link) answer before anything about the address
  is looked up: the lookup, the one-time token, its event and the mail are a job for the outbox
  (portal.outbox), queued the same way for every well-formed address, so neither the page nor
  its timing depends on whether an account exists.
- Opening a mailed link with GET never signs anyone in and never uses up a login link or a reset
  link: mail scanners fetch links before the person reads the mail. A login link shows a
  confirm page ("Continue as ...") whose CSRF-protected POST uses the link and signs in; a reset
  link shows the form whose POST uses it.
- A login link proves the address itself, but an issuer that requires a verified address still
  completes no sign-in of an account whose address is unverified."""

from __future__ import annotations

import msgspec

from authpi.crypto.passwords import policy_problem
from authpi.token.domain.credential_commands import (
    ConsumeLoginLink,
    RecordVerification,
    RequestLoginLink,
    RequestPasswordReset,
    ResetPassword,
)
from authpi.token.endpoints.flow import FlowGone
from authpi.token.portal.common import (
    BLOCKED,
    Answer,
    FlowGoneError,
    Page,
    Visit,
    issuer_name,
    links,
    message,
    normalise_email,
    require_verified_email,
    valid_email,
)
from authpi.token.portal.verification import VerificationFlows
from authpi.token.queries.portal import IssuerRow

SENT = "If an account exists for that address, we have sent it an email. Check your inbox."


class RecoveryFlows(VerificationFlows):
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
        if user is None or await self._sso_only(issuer.id, email):
            return  # an sso_only organization's people have no use for a password
        if not await self._mail_allowed(issuer.id, email):
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
        if user is None or await self._sso_only(issuer.id, email):
            return  # an sso_only organization signs its people in itself
        if not await self._mail_allowed(issuer.id, email):
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
