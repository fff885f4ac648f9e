"""Email verification (idp-api.md 10.3): the verify-email link a sign-up mails, the page that
opening it answers, and the "verify your email to continue" answer to a sign-in on an issuer that
requires a verified address.

A verify-email link does verify on GET, deliberately: verification signs no one in and changes
nothing but the flag, and a fetch of the link, by the person or by their mail provider's scanner,
proves the mailbox received it, which is all that verification claims. Its page then leads back
to sign-in (and to the authorization the person signed up in, while it lasts), never straight
into a session. Verification mail goes through the outbox, so a slow mail server never holds up
a page. A signup held for approval is mailed once approved (`verify_approved`), not before."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.token.domain.credential_commands import RecordVerification, VerifyEmail
from authpi.token.endpoints.flow import FlowGone
from authpi.token.portal.common import Page, PortalBase, Visit, issuer_name, links, message
from authpi.token.queries.portal import IssuerRow


class VerificationFlows(PortalBase):
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

    async def verify_approved(self, issuer_id: str, user_id: str) -> None:
        """The verify-email mail of a signup held for approval, once approved (run by the outbox
        for reactions.approval_mail): to an email username with a password and an address not
        verified yet."""
        issuer = await self.issuer(issuer_id)
        if issuer is None:
            return
        async with self.pool.connection() as conn:
            user = await self.people.user(conn, user_id)
            credential = await self.queries.credential(conn, user_id)
            pii = await self.people.pii(conn, user_id)
        if user is None or user.username_type != "email" or pii is None:
            return
        if credential is None or credential.verifier_id is None or credential.email_verified:
            return
        await self._send_verification(issuer, user_id, pii.username, None)

    async def _resend_verification(
        self, issuer: IssuerRow, user_id: str, email: str, visit: Visit
    ) -> None:
        """Again after a sign-in that needs a verified address, within the requested-mail
        limit (5 per address in 15 minutes)."""
        if await self._mail_allowed(issuer.id, email):
            await self._send_verification(issuer, user_id, email, visit.flow_id)

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
