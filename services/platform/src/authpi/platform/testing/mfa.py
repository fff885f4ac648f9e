"""Second factors from the outside, for end-to-end tests over the `platform` fixture: a person
signed up through the portal, a TOTP verifier enrolled for them through the Core API with the
official admin SDK, and the codes their authenticator app would show (RFC 6238, computed from
the secret the enrolment showed once), and the first steps of a sign-in up to the
second-factor page."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urljoin, urlsplit

import httpx
import pyotp

from authpi.platform.testing.login import PASSWORD, LoginTenant, PortalBrowser

PERIOD_S = 30


@dataclass
class Enrolled:
    user_id: str
    verifier_id: str
    secret: str
    backup_codes: list[str]

    def code(self, steps_ahead: int = 0) -> str:
        """The code the authenticator app shows now (or `steps_ahead` steps later: a code after
        any already used, which the platform accepts within its one-step window)."""
        step = int(time.time()) // PERIOD_S + steps_ahead
        return pyotp.TOTP(self.secret).generate_otp(step)


async def user_id_of(t: LoginTenant, email: str) -> str:
    """The id of the issuer's user whose username is `email`."""
    users = t.admin.issuer(t.issuer_id).users
    for item in (await users.list()).data:
        if (await users.get(item.user_id)).username == email:
            return item.user_id
    raise AssertionError(f"no user {email}")


async def signed_up(t: LoginTenant, email: str) -> str:
    """Sign `email` up on the portal (its own browser, closed after) and return the user id."""
    async with PortalBrowser() as b:
        response = await b.sign_up(t.issuer_url, email)
        assert response.status_code in (302, 303), response.text
    return await user_id_of(t, email)


async def enrol_totp(t: LoginTenant, user_id: str) -> Enrolled:
    """A TOTP verifier enrolled through the Core API, as an administrator would for the user."""
    verifiers = t.admin.issuer(t.issuer_id).user(user_id).verifiers
    started = await verifiers.create({"type": "totp", "name": "Phone"})
    now = int(time.time()) // PERIOD_S
    done = await verifiers.complete_enrollment(
        {
            "enrollment_id": started.enrollment_id,
            "code": pyotp.TOTP(started.secret).generate_otp(now),
        }
    )
    assert done.success and done.verifier_id and done.backup_codes, done
    return Enrolled(user_id, done.verifier_id, started.secret, done.backup_codes)


def authorize_url(t: LoginTenant, client_id: str | None = None) -> str:
    """An authorization request of the tenant's public client (PKCE S256)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = {
        "response_type": "code", "client_id": client_id or t.spa_id,
        "redirect_uri": t.redirect_uri, "scope": "openid email",
        "state": secrets.token_urlsafe(8), "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }  # fmt: skip
    return f"{t.issuer_url}/authorize?{urlencode(query)}"


def location_of(response: httpx.Response) -> str:
    assert response.status_code in (302, 303), (response.status_code, response.text[:2000])
    return urljoin(str(response.url), response.headers["location"])


async def password_step(t: LoginTenant, b: PortalBrowser, email: str) -> str:
    """Start an authorization in `b` and sign in with the password: where the portal sends the
    browser next (the second-factor page, or further when none is asked)."""
    login = location_of(await b.get(authorize_url(t)))
    assert urlsplit(login).path.endswith("/login"), login
    return location_of(await b.submit(login, {"email": email, "password": PASSWORD}))


def passed(location: str, t: LoginTenant) -> bool:
    """Whether a sign-in went past the second factor: on to consent or back to the app."""
    return location.startswith(t.redirect_uri) or urlsplit(location).path.endswith("/consent")
