"""The second-factor page (idp-api.md 12.6): after the password (or a login link) of a user who
needs a second factor (portal.second_factor), `/{issuer_id}/mfa` asks for the code of the
user's authenticator app, or, with `?method=backup`, one of their backup codes, and offers to
trust the browser.

- The page answers only the browser holding the challenge cookie, for the issuer and the
  authorization the challenge was opened for; the challenge is used once, by the first right
  code.
- Codes are checked by handlers.verifiers: a TOTP code is accepted once and never one older
  than a code already accepted; a backup code works once; 5 failures lock the user's second
  factor for 15 minutes, a right code included (idp-api.md 1.5), with a page that says so.
- "Trust this device" sets `authpi_device` (handlers.trusted_devices); later sign-ins of the same
  user at the same issuer from this browser skip the page until it expires or is revoked.
- A user whom a policy requires a second factor of, and who has none, enrols one here: the page
  shows a new TOTP secret (and its `otpauth://` link) and takes a first code, exactly as the
  Core API's enrolment does; then it shows the backup codes, once, and continues."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import msgspec

from authpi.errors import Conflict
from authpi.token.handlers.trusted_devices import device_ttl_s
from authpi.token.handlers.user_lookup import Owner
from authpi.token.portal.common import (
    Answer,
    Page,
    PortalBase,
    Visit,
    links,
    message,
)
from authpi.token.portal.second_factor import CHALLENGE_COOKIE, DEVICE_COOKIE
from authpi.token.queries.mfa import ChallengeRow
from authpi.token.queries.portal import IssuerRow

ERRORS = {
    "invalid_code": "The code is not valid. Check your authenticator app and try again.",
    "code_reused": "This code was already used. Wait for the next code in your authenticator app.",
    "locked": "Too many failed attempts. Two-step verification is locked for 15 minutes; try"
    " again later.",
    "expired": "This setup expired. Add the new key below to your authenticator app.",
}
BACKUP_INVALID = "This backup code is not valid, or it was already used."
MFA_UNAVAILABLE = message(
    "Two-step verification required",
    "This account must confirm sign-ins with a second step, such as a code from an"
    " authenticator app, but its authenticator app is turned off. Contact an administrator.",
    403,
)


class MfaFlows(PortalBase):
    async def mfa_form(self, visit: Visit, issuer: IssuerRow, method: str) -> Answer:
        flow = await self.flow(visit)
        challenge = await self.second_factor.challenge(issuer.id, visit.flow_id, visit.mfa_cookie)
        if challenge is None:
            return self._challenge_gone(visit, issuer)
        if challenge.passed is not None:
            return self._continue_page(visit, issuer, flow, codes=[])
        if await self.second_factor.verifiers.active_totp(challenge.user_id) is None:
            return await self._enrolment_page(visit, issuer, flow, challenge)
        return self._mfa_page(visit, issuer, flow, backup=method == "backup")

    async def mfa(
        self, visit: Visit, issuer: IssuerRow, code: str, kind: str, trust: bool
    ) -> Answer:
        flow = await self.flow(visit)
        factor = self.second_factor
        challenge = await factor.challenge(issuer.id, visit.flow_id, visit.mfa_cookie)
        if challenge is None:
            return self._challenge_gone(visit, issuer)
        owner = await self._owner(issuer, challenge)
        if owner is None:
            return MFA_UNAVAILABLE
        if kind == "continue":
            return await self._continue(visit, issuer, flow, challenge, owner, trust)
        if kind == "enroll":
            return await self._enrol(visit, issuer, flow, challenge, owner, code)
        verifier = await factor.verifiers.active_totp(owner.user.id)
        if verifier is None:
            return await self._enrolment_page(visit, issuer, flow, challenge)
        backup = kind == "backup_code"
        checked = await factor.verifiers.check(
            owner, verifier, code[:64], self._meta(issuer, visit, owner.user.id),
            kind="backup_code" if backup else "totp", client_id=flow.client_id if flow else None,
        )  # fmt: skip
        if not checked.success:
            error = checked.error or "invalid_code"
            text = BACKUP_INVALID if backup and error == "invalid_code" else ERRORS[error]
            status = 403 if error == "locked" else 401
            return self._mfa_page(visit, issuer, flow, backup=backup, error=text, status=status)
        return await self._signed_in_after(
            visit, issuer, flow, challenge, owner, checked.factor_type, trust
        )

    async def _owner(self, issuer: IssuerRow, challenge: ChallengeRow) -> Owner | None:
        async with self.pool.connection() as conn:
            user = await self.people.user(conn, challenge.user_id)
        return None if user is None else Owner(issuer=issuer, user=user)

    async def _signed_in_after(
        self,
        visit: Visit,
        issuer: IssuerRow,
        flow: Any,
        challenge: ChallengeRow,
        owner: Owner,
        factor_type: str,
        trust: bool,
    ) -> Answer:
        """The second factor passed: use the challenge up, trust the browser if asked, and sign
        in with the session recording both factors."""
        if not await self.second_factor.finish(challenge):  # a concurrent submit won
            return self._challenge_gone(visit, issuer)
        cookies = [self._cookie(issuer.id, CHALLENGE_COOKIE, None, 0)]
        if trust:
            meta = self._meta(issuer, visit, owner.user.id)
            devices = self.second_factor.devices
            value, ttl_s = await devices.trust_browser(owner, visit.device.user_agent, meta)
            cookies.append(self._cookie(issuer.id, DEVICE_COOKIE, value, ttl_s))
        method = f"{challenge.method}+{factor_type}"
        answer = await self._session(visit, issuer, flow, owner.user.id, method)
        return msgspec.structs.replace(answer, cookies=[*answer.cookies, *cookies])

    async def _enrol(
        self,
        visit: Visit,
        issuer: IssuerRow,
        flow: Any,
        challenge: ChallengeRow,
        owner: Owner,
        code: str,
    ) -> Answer:
        if challenge.enrollment_id is None:
            return await self._enrolment_page(visit, issuer, flow, challenge)
        try:
            done = await self.second_factor.enrolments.complete(
                owner, challenge.enrollment_id, code[:64], None,
                self._meta(issuer, visit, owner.user.id),
            )  # fmt: skip
        except Conflict:  # enrolled meanwhile (another tab, an administrator)
            return self._mfa_page(visit, issuer, flow, backup=False)
        if not done.success:
            error = ERRORS[done.error or "invalid_code"]
            status = 403 if done.error == "locked" else 401
            return await self._enrolment_page(
                visit, issuer, flow, challenge, error=error, status=status
            )
        await self.second_factor.passed(challenge, "totp")
        return self._continue_page(visit, issuer, flow, codes=done.backup_codes or [])

    async def _continue(
        self,
        visit: Visit,
        issuer: IssuerRow,
        flow: Any,
        challenge: ChallengeRow,
        owner: Owner,
        trust: bool,
    ) -> Answer:
        if challenge.passed is None:
            return await self.mfa_form(visit, issuer, "")
        return await self._signed_in_after(
            visit, issuer, flow, challenge, owner, challenge.passed, trust
        )

    async def _enrolment_page(
        self,
        visit: Visit,
        issuer: IssuerRow,
        flow: Any,
        challenge: ChallengeRow,
        *,
        error: str | None = None,
        status: int = 200,
    ) -> Page:
        """The enrolment this challenge showed, while it lasts; a new one otherwise."""
        owner = await self._owner(issuer, challenge)
        if owner is None:
            return MFA_UNAVAILABLE
        enrolments = self.second_factor.enrolments
        shown = None
        if challenge.enrollment_id is not None:
            shown = await enrolments.resume(owner, challenge.enrollment_id)
        if shown is None:
            try:
                shown = await enrolments.start(owner, "Authenticator app")
            except Conflict:  # a verifier exists, but it is disabled
                return MFA_UNAVAILABLE
            await self.second_factor.showed(challenge, shown.enrollment_id)
        secret = " ".join(shown.secret[i : i + 4] for i in range(0, len(shown.secret), 4))
        return Page(
            template="mfa_enroll.html", status=status,
            context={
                "title": "Set up two-step verification", "error": error, "notice": None,
                "client_name": flow.client_name if flow else None, "secret": secret,
                "uri": shown.provisioning_uri, "links": links(visit.issuer_id, visit.flow_id),
            },
        )  # fmt: skip

    def _continue_page(self, visit: Visit, issuer: IssuerRow, flow: Any, codes: list[str]) -> Page:
        """After an enrolment: its backup codes (shown this once), trust, continue."""
        return Page(
            template="mfa_codes.html",
            context={
                "title": "Save your backup codes", "error": None, "notice": None,
                "client_name": flow.client_name if flow else None, "codes": codes,
                "trust_days": max(1, device_ttl_s(issuer.settings) // 86400),
            },
        )  # fmt: skip

    def _mfa_page(
        self,
        visit: Visit,
        issuer: IssuerRow,
        flow: Any,
        *,
        backup: bool,
        error: str | None = None,
        status: int = 200,
    ) -> Page:
        query = {"flow": visit.flow_id} if visit.flow_id else {}
        if not backup:
            query["method"] = "backup"
        switch = f"/{issuer.id}/mfa" + (f"?{urlencode(query)}" if query else "")
        return Page(
            template="mfa.html", status=status,
            context={
                "title": "Two-step verification", "backup": backup, "error": error,
                "notice": None, "client_name": flow.client_name if flow else None,
                "trust_days": max(1, device_ttl_s(issuer.settings) // 86400),
                "switch": switch, "links": links(visit.issuer_id, visit.flow_id),
            },
        )  # fmt: skip

    def _challenge_gone(self, visit: Visit, issuer: IssuerRow) -> Page:
        page = message(
            "Sign in again",
            "This verification step has expired or was already completed. Sign in again to"
            " continue.",
            400,
        )
        link = {"href": links(issuer.id, visit.flow_id)["login"], "label": "Sign in"}
        return msgspec.structs.replace(page, context={**page.context, "link": link})
