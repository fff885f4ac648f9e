"""The hosted login portal in a real browser (headless Chromium): a person signs up from an
application's authorization request, verifies the address with the mailed link, allows access and
lands on the application's redirect URI with a code the application exchanges; later resets the
password with the mailed link, signs in with the new one and signs out. Every page is saved as a
screenshot under tests/artifacts/ for a person to look at."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from authpi_idp import IdpClient
from authpi_idp.errors import RefreshError
from selenium.webdriver.common.by import By

from authpi.platform.testing.login import (
    PASSWORD,
    SCOPES,
    LoginTenant,
    PortalBrowser,
    click,
    fill,
    login_tenant,
    new_email,
    page_state,
    query_of,
)
from authpi.testing.plugin import eventually

NEW_PASSWORD = "a brand new passphrase 42"
WAIT_S = 30


@pytest.fixture
async def tenant(platform, site):
    made = await login_tenant(
        platform, name="browser", redirect_uri=f"{site.url}/callback",
        post_logout_uri=f"{site.url}/signed-out", client_name="Acme Notes",
    )  # fmt: skip
    yield made
    await made.admin.close()


async def test_signup_verify_consent_reset_login_logout_in_chromium(
    tenant: LoginTenant, site, browser, mailbox
):
    t = tenant
    email = new_email("chromium")
    app = IdpClient(
        issuer_url=t.issuer_url, client_id=t.web_id, client_secret=t.web_secret,
        redirect_uri=t.redirect_uri,
    )  # fmt: skip
    async with app:
        # The application sends the person to sign in; they have no account yet.
        auth = app.create_authorization_url(scopes=SCOPES)
        await browser.get(auth.url)
        login = await browser.run(page_state)
        assert urlsplit(login["url"]).path == f"/{t.issuer_id}/login"
        assert login["h1"] == "Sign in" and "Acme Notes" in login["text"]
        await browser.screenshot("login")

        # A wrong password first: the page says so and stays.
        await browser.run(fill({"email": email, "password": "not the password"}))
        wrong = await browser.run(page_state)
        assert wrong["alerts"] == ["The email or password is incorrect."]
        await browser.screenshot("login-error")

        await browser.run(click("signup"))
        signup = await browser.run(page_state)
        assert urlsplit(signup["url"]).path == f"/{t.issuer_id}/signup"
        await browser.screenshot("signup")
        await browser.run(fill({"name": "Ada Lovelace", "email": email, "password": PASSWORD}))

        consent = await browser.run(page_state)
        assert urlsplit(consent["url"]).path == f"/{t.issuer_id}/consent", consent
        assert consent["h1"] == "Allow access?" and "Acme Notes" in consent["text"]
        assert f"Signed in as {email}" in consent["text"]
        assert "Not you? Use another account" in consent["text"]
        await browser.screenshot("consent")
        await browser.run(click("allow"))

        # The browser lands on the application's redirect URI with a code and the state.
        landed_url = await site.wait_for("/callback")
        landed = query_of(landed_url)
        assert landed["state"] == auth.state and landed["code"]
        assert await browser.run(lambda d: d.find_element(By.ID, "landed").text) == "Example App"
        agent = await app.exchange_callback(landed_url, auth)
        assert agent.email == email and agent.email_verified is False

        # The verification mail's link, opened in the same browser.
        mail = await mailbox.wait_for(to=email, subject_contains="Verify your email")
        await browser.get(mail.link("/verify-email?token="))
        verified = await browser.run(page_state)
        assert verified["h1"] == "Email verified", verified
        await browser.screenshot("verify-result")
        await browser.get(mail.link("/verify-email?token="))  # a second time: used up
        used = await browser.run(page_state)
        assert used["h1"] == "Link already used"
        await browser.screenshot("verify-used")

        async def verified_in_tokens() -> bool:
            nonlocal agent
            agent = await app.refresh(agent)
            return agent.email_verified is True

        await eventually(verified_in_tokens)

        # Forgotten password: from the sign-in page's link, the mailed link, a new password.
        await browser.get(f"{t.issuer_url}/login")
        signed_in = await browser.run(page_state)
        assert signed_in["h1"] == "You are signed in", signed_in
        assert "Go back to the application you want to use" in signed_in["text"]
        await browser.screenshot("signed-in")
        await browser.run(lambda d: d.delete_all_cookies())  # e.g. another device
        # Signing up again with the address: the answer any sign-up gets, and a mail to it.
        await browser.get(f"{t.issuer_url}/signup")
        await browser.run(fill({"name": "Someone Else", "email": email, "password": NEW_PASSWORD}))
        taken = await browser.run(page_state)
        assert taken["h1"] == "Check your email", taken
        assert "already" not in taken["text"]
        await browser.screenshot("signup-address-taken")
        await mailbox.wait_for(to=email, subject_contains="tried to sign up")
        await browser.run(lambda d: d.delete_all_cookies())
        await browser.get(f"{t.issuer_url}/login")
        await browser.run(click("forgot"))
        forgot = await browser.run(page_state)
        assert forgot["h1"] == "Reset your password"
        await browser.screenshot("reset-request")
        await browser.run(fill({"email": email}))
        asked = await browser.run(page_state)
        assert any("If an account exists" in a for a in asked["alerts"]), asked
        assert not await browser.run(lambda d: d.find_elements(By.TAG_NAME, "form"))
        again = await browser.run(lambda d: d.find_element(By.ID, "again").get_attribute("href"))
        assert urlsplit(again).path == f"/{t.issuer_id}/password/forgot"
        await browser.screenshot("reset-requested")
        mail = await mailbox.wait_for(to=email, subject_contains="Reset your")
        await browser.get(mail.link("/password/reset?token="))
        reset = await browser.run(page_state)
        assert reset["h1"] == "Choose a new password"
        await browser.screenshot("reset-form")
        await browser.run(fill({"password": NEW_PASSWORD}))
        changed = await browser.run(page_state)
        assert changed["h1"] == "Password changed", changed
        await browser.screenshot("reset-done")

        # The reset signed every browser out: the application's session ended with it.
        with pytest.raises(RefreshError):
            await app.refresh(agent)

        # Signing in again for the application: the old password fails, the new one works;
        # the consent given before is remembered, so the browser goes straight back.
        auth = app.create_authorization_url(scopes=SCOPES)
        await browser.get(auth.url)
        await browser.run(fill({"email": email, "password": PASSWORD}))
        assert (await browser.run(page_state))["alerts"] == ["The email or password is incorrect."]
        await browser.run(fill({"email": email, "password": NEW_PASSWORD}))
        landed_url = await eventually(
            lambda: _landed(site, "/callback", auth.state), timeout=WAIT_S
        )
        agent = await app.exchange_callback(landed_url, auth)
        assert agent.email == email and agent.email_verified is True

        # Sign out (RP-initiated, no return URI): the portal's signed-out page.
        logout = f"{t.issuer_url}/logout?" + urlencode({"id_token_hint": agent.tokens.id_token})
        await browser.get(logout)
        out = await browser.run(page_state)
        assert urlsplit(out["url"]).path == f"/{t.issuer_id}/signed-out", out
        assert "signed out" in out["h1"].lower()
        back = await browser.run(
            lambda d: [
                (e.text, e.get_attribute("href")) for e in d.find_elements(By.ID, "continue")
            ]
        )
        assert len(back) == 1 and back[0][0].startswith("Return to Acme Notes"), back
        assert back[0][1] == t.post_logout_uri  # the client's registered URI, nothing else
        await browser.screenshot("signed-out")
        with pytest.raises(RefreshError):
            await app.refresh(agent)
        # The browser's session is over: the next authorization shows the sign-in form.
        await browser.get(app.create_authorization_url(scopes=SCOPES).url)
        assert (await browser.run(page_state))["h1"] == "Sign in"


async def _landed(site: Any, path: str, state: str) -> str | None:
    for url in site.requests:
        if urlsplit(url).path == path and query_of(url).get("state") == state:
            return url
    return None


async def test_error_pages_in_chromium(tenant: LoginTenant, browser):
    t = tenant
    # An authorization request with an unregistered redirect URI: a page, no redirect.
    bad = f"{t.issuer_url}/authorize?" + urlencode(
        {
            "response_type": "code", "client_id": t.web_id,
            "redirect_uri": t.redirect_uri + "x", "scope": "openid",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        }
    )  # fmt: skip
    await browser.get(bad)
    page = await browser.run(page_state)
    assert urlsplit(page["url"]).path == f"/{t.issuer_id}/authorize"
    assert page["h1"] == "Sign-in error", page
    assert "This sign-in link is not valid for this application" in page["text"]
    assert "redirect_uri" in page["text"]
    await browser.screenshot("authorize-error")

    await browser.get(f"{t.issuer_url}/error")
    error = await browser.run(page_state)
    assert error["h1"] == "Something went wrong"
    await browser.screenshot("error")

    await browser.get(f"{t.issuer_url}/login?flow=flw_doesnotexist")
    expired = await browser.run(page_state)
    assert expired["h1"] == "This sign-in request has expired"
    await browser.screenshot("flow-expired")

    await browser.get(f"{t.issuer_url}/password/reset?token=not-a-token")
    invalid = await browser.run(page_state)
    assert invalid["h1"] == "Invalid link"
    await browser.screenshot("reset-invalid-link")

    # A form posted after its CSRF cookie is gone (e.g. cookies cleared in another tab).
    await browser.get(f"{t.issuer_url}/login")
    await browser.run(lambda d: d.delete_all_cookies())
    await browser.run(fill({"email": "someone@example.com", "password": PASSWORD}))
    refused = await browser.run(page_state)
    assert refused["h1"] == "Request refused", refused
    await browser.screenshot("csrf-refused")

    # A logout link without the ID token hint, as a person might follow it.
    await browser.get(f"{t.issuer_url}/logout")
    logout = await browser.run(page_state)
    assert logout["h1"] == "Sign-out failed", logout
    assert "id_token_hint" in logout["text"]
    await browser.screenshot("logout-without-hint")


async def test_login_link_from_an_authorization_in_chromium(
    tenant: LoginTenant, site, browser, mailbox
):
    t = tenant
    email = new_email("link")
    async with PortalBrowser() as b:
        assert (await b.sign_up(t.issuer_url, email, PASSWORD)).status_code == 303
    app = IdpClient(issuer_url=t.issuer_url, client_id=t.spa_id, redirect_uri=t.redirect_uri)
    async with app:
        auth = app.create_authorization_url(scopes=SCOPES)
        await browser.get(auth.url)
        await browser.run(click("login-link"))
        asked = await browser.run(page_state)
        assert asked["h1"] == "Sign in with a link"
        await browser.screenshot("login-link-request")
        await browser.run(fill({"email": email}))
        assert any("If an account exists" in a for a in (await browser.run(page_state))["alerts"])

        mail = await mailbox.wait_for(to=email, subject_contains="sign-in link")
        await browser.get(mail.link("/login-link/callback?token="))
        confirm = await browser.run(page_state)
        assert confirm["h1"] == "Continue signing in" and email in confirm["text"]
        assert "Acme Notes" in confirm["text"]
        await browser.screenshot("login-link-confirm")
        await browser.run(click("continue"))
        assert (await browser.run(page_state))["h1"] == "Allow access?"
        await browser.run(click("allow"))

        landed_url = await eventually(
            lambda: _landed(site, "/callback", auth.state), timeout=WAIT_S
        )
        agent = await app.exchange_callback(landed_url, auth)
        assert agent.email == email
        # The link worked once: opening it again says so.
        await browser.get(mail.link("/login-link/callback?token="))
        assert (await browser.run(page_state))["h1"] == "Link already used"
