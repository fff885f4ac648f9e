"""Sign-up under the issuer's signup policy (settings.access, core-api.md 3.7): the form, the
mode and allowed-domain checks, the new account and its password.

Sign-up does not tell whether an address has an account: when it has one, nothing is created, the
page is the same "Check your email" page a new account gets when the issuer requires a verified
address, and the address's owner gets a mail (through the outbox, within the requested-mail
limit) saying someone tried to sign up with it, with links to sign in and to reset the password.
An issuer whose signup mode is `approval` holds the new account (`pending_approval`, core-api.md
3.10): the answer is a "waiting for approval" page, for a taken address too, and the account signs
in once an administrator approves it. An issuer that does not require a verified address signs a
new account in at once, which a taken address cannot be; such an issuer keeps that difference
(sign-up then leads straight into the application), and one that must not reveal its users sets
settings.access.require_verified_email.

A held account gets no verify-email mail until it is approved. A sign-up from an invitation's
page (`?invitation=`) takes the invited address only, also on an `invite_only` issuer, and
accepts the invitation in the same commit (portal.invitations)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from authpi.crypto.passwords import policy_problem
from authpi.errors import AccessDenied, Conflict, NotFound, TemporarilyUnavailable, Unprocessable
from authpi.token.domain.credential_commands import RecordVerification, SetPassword
from authpi.token.portal.common import (
    AWAITING_APPROVAL,
    Answer,
    Page,
    Redirect,
    Visit,
    issuer_name,
    links,
    message,
    normalise_email,
    require_verified_email,
    valid_email,
)
from authpi.token.portal.invitations import (
    OTHER_ADDRESS,
    InvitationFlows,
    answer_refused,
    invitation_notice,
)
from authpi.token.queries.invitations import InvitationRow
from authpi.token.queries.portal import IssuerRow

MAX_NAME_CHARS = 200
SIGNUP_MODES = ("open", "invite_only", "approval", "closed")


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


def signup_refusal(settings: Mapping[str, Any], *, invited: bool = False) -> str | None:
    """Why this issuer takes no sign-ups (`invited`: none from an invitation's page); None
    when it does."""
    match signup_mode(settings):
        case "open" | "approval":  # approval: the directory holds the new account
            return None
        case "invite_only":
            if invited:
                return None
            return "Sign-up is by invitation only. Ask an administrator to invite you."
        case _:
            return "Sign-up is closed. Contact an administrator for access."


APPROVAL_NOTICE = "New accounts are reviewed by an administrator before they can sign in."


def approval_notice(settings: Mapping[str, Any]) -> str | None:
    return APPROVAL_NOTICE if signup_mode(settings) == "approval" else None


def domain_refusal(settings: Mapping[str, Any], email: str) -> str | None:
    domains = allowed_domains(settings)
    if domains is None:
        return None
    if email.rpartition("@")[2] in domains:
        return None
    return "Sign-up is limited to addresses of approved domains."


class SignupFlows(InvitationFlows):
    async def signup_form(self, visit: Visit, issuer: IssuerRow) -> Page:
        flow = await self.flow(visit)
        invitation, problem = await self.invitation_for(visit, issuer)
        if problem is not None:
            return problem
        refusal = signup_refusal(issuer.settings, invited=invitation is not None)
        notice = (
            invitation_notice(invitation, "Sign up")
            if invitation is not None
            else approval_notice(issuer.settings)
        )
        return self._signup_page(
            visit, flow, error=refusal, status=403 if refusal else 200, notice=notice
        )

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
        notice: str | None = None,
    ) -> Page:
        return Page(
            template="signup.html", status=status,
            context={
                "title": "Create your account", "email": email, "name": name, "error": error,
                "notice": notice, "client_name": flow.client_name if flow else None,
                "allowed": allowed if allowed is not None else status != 403,
                "links": links(visit.issuer_id, visit.flow_id, visit.invitation),
            },
        )  # fmt: skip

    async def signup(
        self, visit: Visit, issuer: IssuerRow, email: str, password: str, name: str
    ) -> Answer:
        flow = await self.flow(visit)
        invitation, problem = await self.invitation_for(visit, issuer)
        if problem is not None:
            return problem
        refusal = signup_refusal(issuer.settings, invited=invitation is not None)
        if refusal:
            return self._signup_page(visit, flow, error=refusal, status=403)
        email, name = normalise_email(email), name.strip()
        route = await self._sso_route(issuer.id, email) if valid_email(email) else None
        invited_here = invitation is None or self.for_address(issuer, invitation, email)
        if route is not None and route.sso_only and invited_here:
            # Its organization signs it in, just in time (accepting the invitation, if any).
            return self._sso_start(visit, route, email)
        if invitation is not None and visit.invitation is not None:
            return await self._signup_invited(
                visit, issuer, flow, (invitation, visit.invitation), email, password, name
            )
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
            if signup_mode(issuer.settings) == "approval":
                return AWAITING_APPROVAL
            return self._check_your_email(issuer, visit, email)
        except AccessDenied:  # the directory's signup policy, newer than this page's view
            closed = "Sign-up is closed. Contact an administrator for access."
            return self._signup_page(visit, flow, error=closed, status=403)
        except Unprocessable:
            return self._unstorable(visit, flow, email, name)
        except TemporarilyUnavailable:
            return self._not_now(visit, flow, email, name)
        await self._set_password(visit, issuer, user.id, password)
        if user.status == "pending_approval":
            # No verification mail yet: a held account may never be approved. It goes out
            # with the approval (reactions.approval_mail).
            return AWAITING_APPROVAL
        self.outbox.submit(
            "verify-email",
            lambda: self._send_verification(issuer, user.id, email, visit.flow_id),
        )
        if require_verified_email(issuer.settings):
            return self._check_your_email(issuer, visit, email)
        await self._signed_up(visit, issuer, flow, user.id)
        return await self._signed_in(visit, issuer, flow, user.id, "password")

    async def _signup_invited(
        self,
        visit: Visit,
        issuer: IssuerRow,
        flow: Any,
        invited: tuple[InvitationRow, str],
        email: str,
        password: str,
        name: str,
    ) -> Answer:
        """A sign-up from an invitation's page: with the invited address only (which its
        emailed link proves, so no verification mail), accepting the invitation in the same
        commit (an `invite_only` issuer takes it; an `approval` one does not hold it)."""
        invitation, token = invited
        if not self.for_address(issuer, invitation, email):
            return self._signup_page(
                visit, flow, email=email, name=name, error=OTHER_ADDRESS, status=403,
                allowed=True,
            )  # fmt: skip
        problem = self._signup_problem(issuer, email, password, name, invited=True)
        if problem is not None:
            return self._signup_page(
                visit, flow, email=email, name=name, error=problem, status=400, allowed=True
            )
        profile: dict[str, Any] = {"display_name": name} if name else {}
        try:
            user = await self.registry.register_invited(
                invitation, token, username=email, profile=profile
            )
        except Conflict as exc:
            if exc.reason == "user.username":  # the address has an account: sign in to accept
                return Redirect(location=links(issuer.id, visit.flow_id, token)["login"])
            return answer_refused(invitation, exc)
        except (NotFound, AccessDenied) as exc:
            return answer_refused(invitation, exc)
        except Unprocessable as exc:
            if exc.reason.startswith("membership."):
                return answer_refused(invitation, exc)
            return self._unstorable(visit, flow, email, name)
        except TemporarilyUnavailable:
            return self._not_now(visit, flow, email, name)
        await self._set_password(visit, issuer, user.id, password)
        await self.address_proven(visit, issuer, user.id)
        await self._signed_up(visit, issuer, flow, user.id)
        return await self.joined(visit, issuer, flow, invitation, token, user.id, "password")

    async def _set_password(
        self, visit: Visit, issuer: IssuerRow, user_id: str, password: str
    ) -> None:
        await self.credentials.execute(
            SetPassword(
                issuer_id=issuer.id, user_id=user_id, verifier_id=self.ids.new("vrf"),
                sealed_hash=self._seal(user_id, await self.passwords.hash(password)),
                at=self.clock.now_ms(),
            ),
            self._meta(issuer, visit, user_id),
        )  # fmt: skip

    async def _signed_up(self, visit: Visit, issuer: IssuerRow, flow: Any, user_id: str) -> None:
        """The sign-up's password is its first successful verification."""
        await self.credentials.record(
            RecordVerification(
                issuer_id=issuer.id, user_id=user_id, succeeded=True, method="password",
                client_id=flow.client_id if flow else None, at=self.clock.now_ms(),
            ),
            self._meta(issuer, visit, user_id),
        )  # fmt: skip

    def _unstorable(self, visit: Visit, flow: Any, email: str, name: str) -> Page:
        return self._signup_page(
            visit, flow, email=email, name=name, status=400, allowed=True,
            error="Check your name and email: they contain characters we cannot store.",
        )  # fmt: skip

    def _not_now(self, visit: Visit, flow: Any, email: str, name: str) -> Page:
        return self._signup_page(
            visit, flow, email=email, name=name, status=503, allowed=True,
            error="We could not create your account just now. Try again in a moment.",
        )  # fmt: skip

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
        self, issuer: IssuerRow, email: str, password: str, name: str, invited: bool = False
    ) -> str | None:
        """What is wrong with the form; an invited address passes the domain restriction (an
        administrator chose it)."""
        if not valid_email(email):
            return "Enter a valid email address."
        refused = None if invited else domain_refusal(issuer.settings, email)
        if refused:
            return refused
        if len(name) > MAX_NAME_CHARS or any(ord(c) < 0x20 for c in name):
            return "Enter a shorter name."
        return policy_problem(password)
