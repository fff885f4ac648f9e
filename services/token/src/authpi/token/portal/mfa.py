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
  user at the same issuer from this browser skip the page until it expires or is revoked."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import msgspec

from authpi.token.handlers.trusted_devices import device_ttl_s
from authpi.token.handlers.user_lookup import Owner
from authpi.token.portal.common import (
    MFA_UNAVAILABLE,
    Answer,
    Page,
    PortalBase,
    Visit,
    links,
    message,
)
from authpi.token.portal.second_factor import CHALLENGE_COOKIE, DEVICE_COOKIE
from authpi.token.queries.portal import IssuerRow

ERRORS = {
    "invalid_code": "The code is not valid. Check your authenticator app and try again.",
    "code_reused": "This code was already used. Wait for the next code in your authenticator app.",
    "locked": "Too many failed attempts. Two-step verification is locked for 15 minutes; try"
    " again later.",
}
BACKUP_INVALID = "This backup code is not valid, or it was already used."


class MfaFlows(PortalBase):
    async def mfa_form(self, visit: Visit, issuer: IssuerRow, method: str) -> Answer:
        flow = await self.flow(visit)
        challenge = await self.second_factor.challenge(issuer.id, visit.flow_id, visit.mfa_cookie)
        if challenge is None:
            return self._challenge_gone(visit, issuer)
        return self._mfa_page(visit, issuer, flow, backup=method == "backup")

    async def mfa(
        self, visit: Visit, issuer: IssuerRow, code: str, kind: str, trust: bool
    ) -> Answer:
        flow = await self.flow(visit)
        factor = self.second_factor
        challenge = await factor.challenge(issuer.id, visit.flow_id, visit.mfa_cookie)
        if challenge is None:
            return self._challenge_gone(visit, issuer)
        backup = kind == "backup_code"
        async with self.pool.connection() as conn:
            user = await self.people.user(conn, challenge.user_id)
        verifier = await factor.verifiers.active_totp(challenge.user_id)
        if user is None or verifier is None:
            return MFA_UNAVAILABLE
        owner = Owner(issuer=issuer, user=user)
        meta = self._meta(issuer, visit, user.id)
        checked = await factor.verifiers.check(
            owner, verifier, code[:64], meta, kind="backup_code" if backup else "totp",
            client_id=flow.client_id if flow else None,
        )  # fmt: skip
        if not checked.success:
            error = checked.error or "invalid_code"
            text = BACKUP_INVALID if backup and error == "invalid_code" else ERRORS[error]
            status = 403 if error == "locked" else 401
            return self._mfa_page(visit, issuer, flow, backup=backup, error=text, status=status)
        if not await factor.finish(challenge):  # a concurrent submit of the same challenge won
            return self._challenge_gone(visit, issuer)
        cookies = [self._cookie(issuer.id, CHALLENGE_COOKIE, None, 0)]
        if trust:
            value, ttl_s = await factor.devices.trust_browser(owner, visit.device.user_agent, meta)
            cookies.append(self._cookie(issuer.id, DEVICE_COOKIE, value, ttl_s))
        method = f"{challenge.method}+{checked.factor_type}"
        answer = await self._session(visit, issuer, flow, user.id, method)
        return msgspec.structs.replace(answer, cookies=[*answer.cookies, *cookies])

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
