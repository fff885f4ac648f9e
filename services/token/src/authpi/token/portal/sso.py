"""Organization SSO in the portal (core-api.md 3.16, idp-api.md 10.2, 12.6): the login page sends
an address whose domain an SSO-enabled organization verified to `/{issuer_id}/sso/start` (when
no password was typed, or always for an `sso_only` organization); the start page sends the
browser to the organization's upstream IdP (endpoints.sso_login), and its callback signs the
person in once the upstream's ID token passed every check.

Signing in: the directory finds the issuer's user holding the address (linking the identity,
`user.sso.linked`) or creates it just in time (`user.sso.provisioned`), and makes it a member of
the organization (adapters.registry waits until this service's views hold both). The address
counts as verified (the organization's IdP vouched for an address of its own domain), the sign-in
is recorded (`user.verification.succeeded`, method `sso`), and the authorization the person came
from continues: its tokens carry the organization in `organizations` (and as `org_id` when the
application asked for it). A refused callback is recorded as a failed verification (or a replay,
for a used state) and answered with a page that says why, never a redirect to the client.

A sign-in sent here from an invitation's sign-in or sign-up page (`?invitation=`) accepts that
invitation once the person is signed in, as a password sign-in does (portal.invitations): the
upstream's address must be the invited one. A person the SSO sign-in already made a member of
the invitation's organization has nothing left to accept and goes on signed in."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.contracts.directory import SsoIdentity
from authpi.errors import (
    AuthpiError,
    Conflict,
    NotFound,
    TemporarilyUnavailable,
    Unprocessable,
)
from authpi.observability import get_logger
from authpi.token.domain.credential_commands import RecordReplay, RecordVerification, VerifyEmail
from authpi.token.endpoints.sso_login import Callback, SsoLogin, SsoRefused, browser_cookie
from authpi.token.portal.common import (
    AWAITING_APPROVAL,
    BLOCKED,
    Answer,
    Page,
    Redirect,
    Visit,
    message,
)
from authpi.token.portal.invitations import OTHER_ADDRESS, InvitationFlows
from authpi.token.queries.portal import IssuerRow

log = get_logger("authpi.token.portal")

UNAVAILABLE = "Single sign-on unavailable"
FAILED = "Single sign-on failed"


class SsoFlows(InvitationFlows):
    def _sso(self) -> SsoLogin:
        if self.sso is None:
            raise SsoRefused("sso.unavailable", "Single sign-on is not available here.", 404)
        return self.sso

    async def sso_start(
        self, visit: Visit, issuer: IssuerRow, org_id: str, login_hint: str
    ) -> Answer:
        flow = await self.flow(visit)
        try:
            started = await self._sso().start(
                issuer.id, org_id, flow=flow, login_hint=login_hint or None,
                invitation=visit.invitation,
            )  # fmt: skip
        except SsoRefused as exc:
            log.info("sso.start_refused", issuer_id=issuer.id, org_id=org_id, reason=exc.reason)
            return message(UNAVAILABLE, exc.description, exc.status)
        cookie = browser_cookie(self.idp_base, issuer.id, started.browser)
        return Redirect(location=started.location, cookies=[cookie])

    async def sso_callback(self, visit: Visit, issuer: IssuerRow, answer: Callback) -> Answer:
        cleared = browser_cookie(self.idp_base, issuer.id, None)
        try:
            finished = await self._sso().finish(issuer.id, answer, visit.sso_cookie)
        except SsoRefused as exc:
            await self._sso_refused(visit, issuer, exc)
            return message(FAILED, exc.description, exc.status)
        visit = msgspec.structs.replace(
            visit, flow_id=finished.flow_id, invitation=finished.invitation
        )
        flow = await self.flow(visit)
        try:
            _, user = await self.registry.sso_sign_in(
                account_id=issuer.account_id, issuer_id=issuer.id, org_id=finished.org_id,
                identity=finished.identity,
            )  # fmt: skip
        except AuthpiError as exc:  # refused by the directory (the organization changed meanwhile)
            await self._sso_refused(visit, issuer, SsoRefused(exc.reason, exc.description))
            return message(FAILED, _refusal_text(exc), exc.status)
        client_id = flow.client_id if flow else None
        meta = self._meta(issuer, visit, user.id)
        if user.status != "active":
            await self._sso_failed(visit, issuer, user.id, "user_blocked", finished.identity)
            return AWAITING_APPROVAL if user.status == "pending_approval" else BLOCKED
        now = self.clock.now_ms()
        await self.credentials.execute(
            VerifyEmail(issuer_id=issuer.id, user_id=user.id, at=now), meta
        )
        await self.credentials.record(
            RecordVerification(
                issuer_id=issuer.id, user_id=user.id, succeeded=True, method="sso",
                client_id=client_id, at=now,
            ),
            meta,
        )  # fmt: skip
        accepted = await self._accept_invitation(visit, issuer, flow, user.id)
        if isinstance(accepted, Page):
            return accepted
        # The second factor, when the user needs one, comes next (portal.second_factor).
        signed_in = accepted or await self._signed_in(visit, issuer, flow, user.id, "sso")
        if isinstance(signed_in, Page):
            return signed_in
        return msgspec.structs.replace(signed_in, cookies=[*signed_in.cookies, cleared])

    async def _accept_invitation(
        self, visit: Visit, issuer: IssuerRow, flow: Any, user_id: str
    ) -> Answer | None:
        """Accept the invitation the sign-in came with (its answer: on to the application or
        the invitation page, or the page that says why not); None when there is none to accept."""
        if visit.invitation is None:
            return None
        row, problem = await self.invitation_for(visit, issuer)
        if problem is not None or row is None:
            return problem
        if not await self._holds_address(user_id, row):
            return message("This invitation is for another address", OTHER_ADDRESS, 403)
        async with self.pool.connection() as conn:
            if await self.people.member(conn, user_id, row.org_id):
                return None  # a member already (through this sign-in): nothing to accept
        return await self.join(visit, issuer, flow, row, visit.invitation, user_id, "sso")

    async def _sso_refused(self, visit: Visit, issuer: IssuerRow, exc: SsoRefused) -> None:
        log.warning("sso.callback_refused", issuer_id=issuer.id, reason=exc.reason)
        if exc.replayed:
            await self.credentials.record(
                RecordReplay(
                    issuer_id=issuer.id, client_id=None, flow="sso", artifact="state",
                    at=self.clock.now_ms(),
                ),
                self._meta(issuer, visit, None),
            )  # fmt: skip
        elif exc.reason != "sso.state_unknown":  # a sign-in of ours that went wrong
            await self._sso_failed(visit, issuer, None, exc.reason, None)

    async def _sso_failed(
        self,
        visit: Visit,
        issuer: IssuerRow,
        user_id: str | None,
        reason: str,
        identity: SsoIdentity | None,
    ) -> None:
        username_hash = (
            self.people.username_hash(issuer.id, identity.email) if identity is not None else None
        )
        await self.credentials.record(
            RecordVerification(
                issuer_id=issuer.id, user_id=user_id, succeeded=False, method="sso",
                reason=reason[:100], username_hash=username_hash, at=self.clock.now_ms(),
            ),
            self._meta(issuer, visit, user_id),
        )  # fmt: skip


def _refusal_text(exc: AuthpiError) -> str:
    if isinstance(exc, TemporarilyUnavailable):
        return "We could not sign you in just now. Try again in a moment."
    if isinstance(exc, Unprocessable):
        return "The identity provider sent an address we cannot use."
    if isinstance(exc, Conflict | NotFound):
        return f"Your organization does not allow this sign-in: {exc.description}."
    return "We could not sign you in."
