"""Sign-in with a password (idp-api.md 12.6): the login form, the password check, the lockout
and the verified-email check.

- Answers never tell which usernames exist: an unknown username costs one Argon2id verification
  like a known one and counts towards the same lockout.
- 5 failed verifications of one credential lock it for 15 minutes (idp-api.md 1.5), keyed by
  (issuer, username hash); a locked credential gets a page that says so, not a 429.
- The user's status is checked only after the password is right, so it does not leak either.
- An address whose domain an SSO-enabled organization verified goes to that organization's
  single sign-on (portal.sso) when no password is typed, and always when the organization is
  `sso_only`: its people never sign in with a password.
- An issuer with settings.access.require_verified_email (default false) completes no sign-in of
  a user whose address is unverified: a right password gets a page that says a verification
  link was sent (it is sent again, within the requested-mail limit) and the authorization waits
  until the person verifies and signs in again.
- A sign-in from an invitation's page (`?invitation=`) must use the invited address; it accepts
  the invitation (portal.invitations), and its emailed link counts as a verified address. When
  that address goes to its organization's single sign-on, the SSO sign-in accepts it."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.token.domain.credential_commands import RecordVerification, RehashPassword
from authpi.token.portal.common import (
    AWAITING_APPROVAL,
    BLOCKED,
    Answer,
    Page,
    Visit,
    issuer_name,
    links,
    message,
    normalise_email,
    require_verified_email,
    valid_email,
)
from authpi.token.portal.invitations import OTHER_ADDRESS, InvitationFlows, invitation_notice
from authpi.token.portal.signup import signup_refusal
from authpi.token.queries.portal import CredentialRow, IssuerRow

LOCKED = "Too many failed attempts. This account is locked for 15 minutes; try again later."
INVALID = "The email or password is incorrect."


class LoginFlows(InvitationFlows):
    async def login_form(self, visit: Visit, issuer: IssuerRow) -> Page:
        flow = await self.flow(visit)
        invitation, problem = await self.invitation_for(visit, issuer)
        if problem is not None:
            return problem
        sso = self.sso is not None and await self.sso.available(issuer.id)
        if invitation is not None:
            notice = invitation_notice(invitation, "Sign in")
            return self._login_page(visit, issuer, flow, notice=notice, sso=sso)
        if flow is None and visit.session_cookie:
            session = await self.interactions.browser_session(issuer.id, visit.session_cookie)
            if session is not None:
                return message(
                    "You are signed in",
                    f"You are signed in to {issuer_name(issuer)}. Go back to the application you"
                    " want to use and choose to sign in there: it continues without asking for"
                    " your password again.",
                )
        email = (flow and flow.login_hint) or ""
        return self._login_page(visit, issuer, flow, email=email, sso=sso)

    def _login_page(
        self,
        visit: Visit,
        issuer: IssuerRow,
        flow: Any,
        *,
        email: str = "",
        error: str | None = None,
        status: int = 200,
        sso: bool = False,
        notice: str | None = None,
    ) -> Page:
        invited = visit.invitation is not None
        return Page(
            template="login.html", status=status,
            context={
                "title": "Sign in", "email": email, "error": error, "notice": notice,
                "client_name": flow.client_name if flow else None,
                "signup_open": signup_refusal(issuer.settings, invited=invited) is None,
                "links": links(visit.issuer_id, visit.flow_id, visit.invitation), "sso": sso,
            },
        )  # fmt: skip

    async def login(self, visit: Visit, issuer: IssuerRow, email: str, password: str) -> Answer:
        flow = await self.flow(visit)
        invitation, problem = await self.invitation_for(visit, issuer)
        if problem is not None:
            return problem
        email = normalise_email(email)
        if invitation is not None and email and not self.for_address(issuer, invitation, email):
            return self._login_page(
                visit, issuer, flow, email=email, error=OTHER_ADDRESS, status=403
            )
        route = await self._sso_route(issuer.id, email) if valid_email(email) else None
        if route is not None and (route.sso_only or not password):
            # The organization signs this address in (an sso_only one never with a password);
            # that sign-in accepts the invitation, if any (portal.sso).
            return self._sso_start(visit, route, email)
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
            if user.status == "pending_approval":
                return msgspec.structs.replace(AWAITING_APPROVAL, status=403)
            return BLOCKED
        await self._rehash_if_needed(issuer, user.id, cred.password_hash, password, visit)
        if invitation is not None and not cred.email_verified:
            await self.address_proven(visit, issuer, user.id)
        elif require_verified_email(issuer.settings) and not cred.email_verified:
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
        if invitation is not None and visit.invitation is not None:
            return await self.join(visit, issuer, flow, invitation, visit.invitation, user.id)
        return await self._signed_in(visit, issuer, flow, user.id, "password")

    async def _credential_of(self, issuer_id: str, email: str) -> tuple[Any, CredentialRow | None]:
        """The user behind `email` and its credential row (None: no user, or no row)."""
        async with self.pool.connection() as conn:
            user = await self.people.user_by_username(conn, issuer_id, email)
            if user is None:
                return None, None
            return user, await self.queries.credential(conn, user.id)

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
