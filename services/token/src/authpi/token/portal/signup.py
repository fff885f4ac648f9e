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
settings.access.require_verified_email."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from authpi.crypto.passwords import policy_problem
from authpi.errors import Conflict, TemporarilyUnavailable, Unprocessable
from authpi.token.domain.credential_commands import RecordVerification, SetPassword
from authpi.token.portal.common import (
    AWAITING_APPROVAL,
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
from authpi.token.portal.verification import VerificationFlows
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


def signup_refusal(settings: Mapping[str, Any]) -> str | None:
    """Why this issuer takes no sign-ups at all; None when it does."""
    match signup_mode(settings):
        case "open" | "approval":  # approval: the directory holds the new account
            return None
        case "invite_only":
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


class SignupFlows(VerificationFlows):
    async def signup_form(self, visit: Visit, issuer: IssuerRow) -> Page:
        flow = await self.flow(visit)
        refusal = signup_refusal(issuer.settings)
        return self._signup_page(
            visit, flow, error=refusal, status=403 if refusal else 200,
            notice=approval_notice(issuer.settings),
        )  # fmt: skip

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
        route = await self._sso_route(issuer.id, email) if valid_email(email) else None
        if route is not None and route.sso_only:  # its organization signs it in, just in time
            return self._sso_start(visit, route, email)
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
        if user.status == "pending_approval":
            return AWAITING_APPROVAL
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
