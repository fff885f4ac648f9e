"""Signup approval in a real browser (headless Chromium, core-api.md 3.10): on an issuer whose
signup mode is `approval`, a person signs up from an application's authorization request and is
told the account waits for approval; signing in shows the same page until an administrator
approves it through the official SDK, and then signs in to the application at once. The
verify-email mail goes out with the approval, not before. A rejected person never gets in.
Every page is saved as a screenshot under tests/artifacts/."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from authpi_idp import IdpClient

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

WAITING = "Waiting for approval"
VERIFY = "Verify your email"
WAIT_S = 30


@pytest.fixture
async def tenant(platform, site):
    made = await login_tenant(
        platform, name="approvals", redirect_uri=f"{site.url}/callback",
        post_logout_uri=f"{site.url}/signed-out", client_name="Acme Notes",
        settings={"access": {"mode": "approval"}},
    )  # fmt: skip

    async def holds_signups() -> bool:
        async with httpx.AsyncClient() as http:
            page = await http.get(f"{made.issuer_url}/signup")
        return "reviewed by an administrator" in page.text

    await eventually(holds_signups)
    yield made
    await made.admin.close()


async def _user_id(t: LoginTenant, email: str) -> str:
    for item in (await t.admin.issuer(t.issuer_id).approvals.list()).data:
        if (await t.admin.issuer(t.issuer_id).approvals.get(item.user_id)).username == email:
            return item.user_id
    raise AssertionError(f"{email} is not waiting for approval")


async def _landed(site, state: str) -> str | None:
    for url in site.requests:
        if urlsplit(url).path == "/callback" and query_of(url).get("state") == state:
            return url
    return None


async def test_a_held_signup_waits_until_an_admin_approves_it_in_chromium(
    tenant: LoginTenant, site, browser, mailbox
):
    t = tenant
    email = new_email("held")
    app = IdpClient(issuer_url=t.issuer_url, client_id=t.spa_id, redirect_uri=t.redirect_uri)
    async with app:
        auth = app.create_authorization_url(scopes=SCOPES)
        await browser.get(auth.url)
        await browser.run(click("signup"))
        signup = await browser.run(page_state)
        assert "reviewed by an administrator" in signup["text"], signup
        await browser.screenshot("approval-signup")
        await browser.run(fill({"name": "Grace Hopper", "email": email, "password": PASSWORD}))
        held = await browser.run(page_state)
        assert held["h1"] == WAITING, held
        await browser.screenshot("approval-waiting")

        # Signing in before a decision: the same page, no session.
        await browser.get(auth.url)
        await browser.run(fill({"email": email, "password": PASSWORD}))
        still = await browser.run(page_state)
        assert still["h1"] == WAITING, still
        assert await _landed(site, auth.state) is None
        await browser.screenshot("approval-login-waiting")

        # Held, the account was asked to verify nothing: the mail waits for the approval.
        assert not [m for m in await mailbox.messages(to=email) if VERIFY in m.subject]

        user_id = await _user_id(t, email)
        await t.admin.issuer(t.issuer_id).approvals.update(user_id, {"decision": "approve"})
        await mailbox.wait_for(to=email, subject_contains="is approved")
        verify = await mailbox.wait_for(to=email, subject_contains=VERIFY)
        assert [m.id for m in await mailbox.messages(to=email) if VERIFY in m.subject] == [
            verify.id
        ]
        await browser.get(verify.link("/verify-email?token="))
        verified = await browser.run(page_state)
        assert verified["h1"] == "Email verified", verified

        # Approved: the next sign-in goes through at once.
        auth = app.create_authorization_url(scopes=SCOPES)
        await browser.get(auth.url)
        await browser.run(fill({"email": email, "password": PASSWORD}))
        consent = await browser.run(page_state)
        assert consent["h1"] == "Allow access?", consent
        await browser.screenshot("approval-approved-consent")
        await browser.run(click("allow"))
        landed_url = await eventually(lambda: _landed(site, auth.state), timeout=WAIT_S)
        agent = await app.exchange_callback(landed_url, auth)
        assert agent.email == email and agent.email_verified is True


async def test_a_rejected_signup_never_signs_in_in_chromium(tenant: LoginTenant, browser, mailbox):
    t = tenant
    email = new_email("rejected")
    async with PortalBrowser() as b:
        assert (await b.sign_up(t.issuer_url, email, PASSWORD)).status_code == 200
    user_id = await _user_id(t, email)
    await t.admin.issuer(t.issuer_id).approvals.update(
        user_id, {"decision": "reject", "reason": "unknown person"}
    )
    await mailbox.wait_for(to=email, subject_contains="not approved")
    await browser.get(f"{t.issuer_url}/login")
    await browser.run(fill({"email": email, "password": PASSWORD}))
    refused = await browser.run(page_state)
    assert refused["h1"] == "Account unavailable", refused
    await browser.screenshot("approval-rejected-login")
