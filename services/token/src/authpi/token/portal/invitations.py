"""The invitation page (core-api.md 3.15, idp-api.md 12.6): where an organization invitation's
emailed link leads. It shows the organization and who invited, and takes the invitee's answer.

- Opening the link changes nothing (a mail scanner may fetch it): accept and decline are POSTs.
- Accept, signed in as the invited address: the membership is created at once. Signed in as
  another address: refused; the page offers to switch accounts. Not signed in: the person signs
  in (the address has an account) or signs up with the invited address, and the sign-in or
  sign-up accepts (portal.login, portal.signup); an issuer whose signup mode is `invite_only`
  takes that sign-up. The emailed link proves the address, as a verify-email link does.
- After an acceptance the person continues to the application when the page belongs to an
  authorization request (`flow`), and otherwise is signed in and sees the page again, which
  says they joined.
- The answer is a command on the directory's Organization (InvitationAnswers, through
  `Registry`); the page answers once this service's own views hold its outcome, so the next
  token carries the organization. A used, declined, revoked, expired or replaced link, an
  organization that is suspended (its invitations are frozen) or that no longer takes
  invitations each get a page that says so, and change nothing."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.errors import AuthpiError, Conflict, NotFound, TemporarilyUnavailable, Unprocessable
from authpi.token.domain.credential_commands import VerifyEmail
from authpi.token.portal.common import (
    Answer,
    Page,
    Redirect,
    Visit,
    links,
    message,
)
from authpi.token.portal.verification import VerificationFlows
from authpi.token.queries.invitations import InvitationRow
from authpi.token.queries.portal import IssuerRow

UNKNOWN = message(
    "Invalid invitation link",
    "This invitation link is not valid. If you received a newer invitation email, use the link"
    " in that one; otherwise ask for a new invitation.",
    404,
)
UNAVAILABLE = message(
    "Try again in a moment",
    "We could not record your answer just now. Reload this page to try again.",
    503,
)
OTHER_ADDRESS = (
    "This invitation was sent to another email address. Sign in or sign up with the address"
    " it was sent to."
)


def org_of(row: InvitationRow) -> str:
    return row.org_name or "the organization"


def inviter_of(row: InvitationRow) -> str:
    return row.inviter_name or "the person who invited you"


def invitation_problem(row: InvitationRow) -> Page | None:
    """Why the invitation cannot be answered now (an accepted one aside); None when it can."""
    org = org_of(row)
    match row.status:
        case "declined":
            return message(
                "Invitation declined",
                f"This invitation to join {org} was declined. If you changed your mind, ask"
                f" {inviter_of(row)} for a new one.",
                410,
            )
        case "revoked":
            return message(
                "Invitation withdrawn",
                f"This invitation to join {org} was withdrawn and can no longer be accepted.",
                410,
            )
        case "expired":
            return message(
                "Invitation expired",
                f"This invitation to join {org} has expired. Ask {inviter_of(row)} for a new one.",
                410,
            )
        case _:
            pass
    if row.org_status == "deleting":
        return _gone(row)
    if row.org_status != "active":
        return message(
            "Invitations paused",
            f"{org} is suspended: its invitations cannot be accepted or declined until it is"
            " active again. Try again later, or ask an administrator.",
            409,
        )
    if not row.invitation_enabled:
        return message(
            "Invitations closed",
            f"{org} is not accepting invitations right now. Ask an administrator.",
            409,
        )
    return None


def invitation_notice(row: InvitationRow, verb: str) -> str:
    """What the sign-in or sign-up page of an invitation says (`verb`: Sign in, Sign up)."""
    return f"{verb} with the address this invitation was sent to, to join {org_of(row)}."


def used(row: InvitationRow) -> Page:
    return message(
        "Invitation already used",
        f"This invitation to join {org_of(row)} has already been accepted. An invitation link"
        " works once.",
        410,
    )


def answer_refused(row: InvitationRow, exc: AuthpiError) -> Page:
    """The page for the directory's refusal of an answer (InvitationAnswers lists them)."""
    match exc.reason:
        case "invitation.not_pending":
            return used(row) if row.status == "accepted" else _gone(row)
        case "invitation.expired":
            return invitation_problem(msgspec.structs.replace(row, status="expired")) or UNKNOWN
        case "organization.suspended":
            frozen = msgspec.structs.replace(row, org_status="suspended")
            return invitation_problem(frozen) or UNKNOWN
        case "invitation.disabled":
            closed = msgspec.structs.replace(row, invitation_enabled=False)
            return invitation_problem(closed) or UNKNOWN
        case "invitation.other_address":
            return message("This invitation is for another address", OTHER_ADDRESS, 403)
        case "membership.exists":
            return message(
                "Already a member",
                f"You are already a member of {org_of(row)}; there is nothing to accept.",
                409,
            )
        case "membership.max_members":
            return message(
                "The organization is full",
                f"{org_of(row)} has reached its member limit. Ask an administrator.",
                409,
            )
        case _:
            return UNKNOWN


def _gone(row: InvitationRow) -> Page:
    return message(
        "Invitation no longer available",
        f"This invitation to join {org_of(row)} can no longer be answered.",
        410,
    )


class InvitationFlows(VerificationFlows):
    async def invitation_page(self, visit: Visit, issuer: IssuerRow, token: str) -> Page:
        row = await self._invitation(issuer, token)
        if row is None:
            return UNKNOWN
        session = await self.interactions.browser_session(issuer.id, visit.session_cookie)
        if row.status == "accepted":
            if session is not None and session.user_id == row.accepted_by:
                return self._joined(row)
            return used(row)
        problem = invitation_problem(row)
        if problem is not None:
            return problem
        account, matches = None, True
        if session is not None:
            account = await self._address_of(session.user_id)
            matches = await self._holds_address(session.user_id, row)
        org = org_of(row)
        return Page(
            template="invitation.html",
            context={
                "title": f"Join {org}", "org_name": org, "inviter": row.inviter_name,
                "user_title": row.user_title, "note": row.message, "token": token,
                "account": account, "matches": matches,
                "error": None if matches else OTHER_ADDRESS,
                "accept_label": f"Join {org}" if session is not None else "Accept invitation",
                "hint": (
                    "Declining tells the organization you will not join."
                    if session is not None
                    else "To accept, you sign in, or create an account with the address this"
                    " invitation was sent to."
                ),
            },
        )  # fmt: skip

    async def answer_invitation(
        self, visit: Visit, issuer: IssuerRow, token: str, decision: str
    ) -> Answer:
        row = await self._invitation(issuer, token)
        if row is None:
            return UNKNOWN
        if row.status == "accepted":
            return used(row)
        problem = invitation_problem(row)
        if problem is not None:
            return problem
        session = await self.interactions.browser_session(issuer.id, visit.session_cookie)
        match decision:
            case "decline":
                return await self._decline(row, token)
            case "switch":  # "Use another account": end this browser's session
                if session is not None:
                    await self.sessions.revoke(
                        issuer.id, session.id, reason="logout", by=session.user_id,
                        meta=self._meta(issuer, visit, session.user_id), lenient=True,
                    )  # fmt: skip
                back = links(issuer.id, visit.flow_id, token)["invitation"]
                return Redirect(location=back, clear_session=True)
            case "accept":
                pass
            case _:
                return message("Bad request", "Choose to accept or to decline.", 400)
        if session is None:  # sign in, or sign up with the invited address, to accept
            async with self.pool.connection() as conn:
                user = await self.people.user_by_hash(conn, issuer.id, row.email_hash)
            page = "login" if user is not None else "signup"
            return Redirect(location=links(issuer.id, visit.flow_id, token)[page])
        if not await self._holds_address(session.user_id, row):
            back = {"href": links(issuer.id, visit.flow_id, token)["invitation"], "label": "Back"}
            return message("This invitation is for another address", OTHER_ADDRESS, 403, link=back)
        flow = await self.flow(visit)
        return await self.join(
            visit, issuer, flow, row, token, session.user_id, session.auth_method
        )

    async def invitation_for(
        self, visit: Visit, issuer: IssuerRow
    ) -> tuple[InvitationRow | None, Page | None]:
        """The invitation a sign-in or sign-up accepts (`visit.invitation`), or the page that
        says why it cannot be accepted; (None, None) when the visit carries none."""
        if visit.invitation is None:
            return None, None
        row = await self._invitation(issuer, visit.invitation)
        if row is None:
            return None, UNKNOWN
        if row.status == "accepted":
            return None, used(row)
        return (None, problem) if (problem := invitation_problem(row)) else (row, None)

    def for_address(self, issuer: IssuerRow, row: InvitationRow, email: str) -> bool:
        """Whether `email` is the address the invitation was sent to."""
        return self.people.username_hash(issuer.id, email) == row.email_hash

    async def join(
        self,
        visit: Visit,
        issuer: IssuerRow,
        flow: Any,
        row: InvitationRow,
        token: str,
        user_id: str,
        method: str = "password",
    ) -> Answer:
        """Accept as `user_id`, who signed in with the invited address, then continue."""
        try:
            await self.registry.accept(row, token, user_id)
        except (NotFound, Conflict, Unprocessable) as exc:
            return answer_refused(row, exc)
        except TemporarilyUnavailable:
            return UNAVAILABLE
        return await self.joined(visit, issuer, flow, row, token, user_id, method)

    async def joined(
        self,
        visit: Visit,
        issuer: IssuerRow,
        flow: Any,
        row: InvitationRow,
        token: str,
        user_id: str,
        method: str,
    ) -> Answer:
        """After an acceptance: on to the application when there is an authorization request,
        otherwise signed in and back to the invitation page, which says the person joined; a
        user who needs a second factor passes it first (portal.second_factor)."""
        landing = links(issuer.id, None, token)["invitation"]
        return await self._signed_in(visit, issuer, flow, user_id, method, landing=landing)

    async def address_proven(self, visit: Visit, issuer: IssuerRow, user_id: str) -> None:
        """The invitation's link was mailed to the address: opening it proves the mailbox, as a
        verify-email link does, so the address counts as verified."""
        await self.credentials.execute(
            VerifyEmail(issuer_id=issuer.id, user_id=user_id, at=self.clock.now_ms()),
            self._meta(issuer, visit, user_id),
        )

    async def _decline(self, row: InvitationRow, token: str) -> Page:
        try:
            await self.registry.decline(row, token)
        except (NotFound, Conflict, Unprocessable) as exc:
            return answer_refused(row, exc)
        except TemporarilyUnavailable:
            return UNAVAILABLE
        return message(
            "Invitation declined",
            f"You declined the invitation to join {org_of(row)}. Nothing else changed; you can"
            " close this window.",
        )

    def _joined(self, row: InvitationRow) -> Page:
        org = org_of(row)
        return message(
            f"You have joined {org}",
            f"You are now a member of {org}. Go back to the application you use with {org}: it"
            " shows the organization the next time you sign in there.",
        )

    async def _invitation(self, issuer: IssuerRow, token: str) -> InvitationRow | None:
        async with self.pool.connection() as conn:
            return await self.invitations.by_token(conn, issuer.id, token, self.clock.now_ms())

    async def _holds_address(self, user_id: str, row: InvitationRow) -> bool:
        async with self.pool.connection() as conn:
            user = await self.people.user(conn, user_id)
        return user is not None and user.username_hash == row.email_hash
