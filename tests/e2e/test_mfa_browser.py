"""Two-step sign-in in a real browser (headless Chromium): a person who signed up on the portal
gets a TOTP verifier through the Core API (an administrator's enrolment with the official
SDK), and at the very next sign-in the portal asks for the authenticator app's code; then they
sign in with a backup code and ask the portal to trust the browser; then the trusted browser
signs in with the password alone; once an administrator revokes all trusted devices, the code
is asked again. And a person whose issuer requires a second factor sets one up on the portal
itself. Every page is saved as a screenshot under tests/artifacts/."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from authpi_idp import IdpClient
from selenium.webdriver.common.by import By

from authpi.platform.testing.login import (
    PASSWORD,
    SCOPES,
    LoginTenant,
    click,
    fill,
    login_tenant,
    new_email,
    page_state,
    query_of,
)
from authpi.platform.testing.mfa import Enrolled, enrol_totp, signed_up
from authpi.testing.plugin import eventually


@pytest.fixture
async def tenant(platform, site):
    made = await login_tenant(
        platform, name="mfa-browser", redirect_uri=f"{site.url}/callback",
        post_logout_uri=f"{site.url}/signed-out", client_name="Acme Notes",
    )  # fmt: skip
    yield made
    await made.admin.close()


def path_of(state: dict[str, Any]) -> str:
    return urlsplit(state["url"]).path


async def landed(site: Any, state: str) -> str | None:
    for url in site.requests:
        if urlsplit(url).path == "/callback" and query_of(url).get("state") == state:
            return url
    return None


async def test_totp_backup_code_and_trusted_device_sign_ins_in_chromium(
    tenant: LoginTenant, site, browser
):
    t = tenant
    email = new_email("totp")
    totp = await enrol_totp(t, await signed_up(t, email))
    app = IdpClient(
        issuer_url=t.issuer_url, client_id=t.web_id, client_secret=t.web_secret,
        redirect_uri=t.redirect_uri,
    )  # fmt: skip

    async def sign_in(label: str) -> dict[str, Any]:
        """The application sends the person to sign in; the password; what comes next."""
        auth = app.create_authorization_url(scopes=SCOPES)
        await browser.get(auth.url)
        assert (await browser.run(page_state))["h1"] == "Sign in"
        await browser.run(fill({"email": email, "password": PASSWORD}))
        state = await browser.run(page_state)
        await browser.screenshot(label)
        return {"auth": auth, **state}

    async def forget_session() -> None:
        """A new browser session: the op session cookie goes, a trusted device's stays."""
        await browser.run(
            lambda d: d.execute_cdp_cmd(
                "Network.deleteCookies", {"name": "authpi_session", "url": f"{t.issuer_url}/"}
            )
        )

    async with app:
        # The verifier was enrolled through the Core API a moment ago: the very next sign-in
        # asks for the code.
        first = await sign_in("challenge")
        assert path_of(first) == f"/{t.issuer_id}/mfa", first
        assert first["h1"] == "Two-step verification"
        assert "Enter the 6-digit code from your authenticator app" in first["text"]
        await browser.run(fill({"code": "000000"}))
        wrong = await browser.run(page_state)
        assert wrong["alerts"] == [
            "The code is not valid. Check your authenticator app and try again."
        ]
        await browser.screenshot("challenge-wrong-code")
        await browser.run(fill({"code": totp.code(steps_ahead=1)}))
        consent = await browser.run(page_state)
        assert path_of(consent) == f"/{t.issuer_id}/consent", consent
        await browser.screenshot("consent")
        await browser.run(click("allow"))
        callback = await eventually(lambda: landed(site, first["auth"].state))
        person = await app.exchange_callback(callback, first["auth"])
        assert person.email == email

        # Another sign-in, with a backup code instead, trusting this browser.
        await forget_session()
        second = await sign_in("challenge-again")
        assert path_of(second) == f"/{t.issuer_id}/mfa", second
        await browser.run(click("use-backup"))
        backup = await browser.run(page_state)
        assert "Enter one of your backup codes" in backup["text"], backup
        await browser.screenshot("backup-code")
        await browser.run(lambda d: d.find_element(By.ID, "trust").click())
        await browser.run(fill({"code": totp.backup_codes[0]}))
        assert await eventually(lambda: landed(site, second["auth"].state))
        await browser.screenshot("backup-code-signed-in")
        verifiers = t.admin.issuer(t.issuer_id).user(totp.user_id).verifiers
        after = await verifiers.get(totp.verifier_id)
        assert after.model_extra is not None
        assert after.model_extra["backup_codes"] == {"remaining": 9, "total": 10}
        [device] = (
            await t.admin.issuer(t.issuer_id).user(totp.user_id).trusted_devices.list()
        ).data
        assert device.name == "Chrome" and device.last_used_at is None

        # The trusted browser: the password is enough.
        await forget_session()
        auth = app.create_authorization_url(scopes=SCOPES)
        await browser.get(auth.url)
        await browser.run(fill({"email": email, "password": PASSWORD}))
        assert await eventually(lambda: landed(site, auth.state))
        await browser.screenshot("trusted-device-signed-in")
        [used] = (await t.admin.issuer(t.issuer_id).user(totp.user_id).trusted_devices.list()).data
        assert used.id == device.id and used.last_used_at is not None

        # An administrator revokes every trusted device: the code is asked again.
        devices = t.admin.issuer(t.issuer_id).user(totp.user_id).trusted_devices
        assert (await devices.revoke_all()).revoked_count == 1
        await forget_session()
        revoked = await sign_in("challenge-after-revoke-all")
        assert path_of(revoked) == f"/{t.issuer_id}/mfa", revoked


async def test_enrolment_on_the_portal_when_the_issuer_requires_a_second_factor_in_chromium(
    tenant: LoginTenant, site, browser
):
    t = tenant
    email = new_email("enrol")
    await signed_up(t, email)
    await t.admin.issuers.update(t.issuer_id, {"settings": {"security": {"mfa_required": True}}})
    app = IdpClient(issuer_url=t.issuer_url, client_id=t.spa_id, redirect_uri=t.redirect_uri)
    async with app:
        auth = app.create_authorization_url(scopes=SCOPES)
        await browser.get(auth.url)
        await browser.run(fill({"email": email, "password": PASSWORD}))
        setup = await browser.run(page_state)
        assert setup["h1"] == "Set up two-step verification", setup
        secret = await browser.run(lambda d: d.find_element(By.ID, "secret").text)
        uri = await browser.run(lambda d: d.find_element(By.ID, "otpauth").get_attribute("href"))
        assert uri.startswith("otpauth://totp/") and f"secret={secret.replace(' ', '')}" in uri
        await browser.screenshot("enrol")
        enrolled = Enrolled("", "", secret.replace(" ", ""), [])
        await browser.run(fill({"code": enrolled.code()}))
        codes = await browser.run(page_state)
        assert codes["h1"] == "Save your backup codes", codes
        shown = await browser.run(
            lambda d: [e.text for e in d.find_elements(By.CSS_SELECTOR, "#codes li")]
        )
        assert len(shown) == 10
        await browser.screenshot("backup-codes")
        await browser.run(click("submit"))
        consent = await browser.run(page_state)
        assert path_of(consent) == f"/{t.issuer_id}/consent", consent
