"""Organization SSO in a real browser (headless Chromium): an application sends a person to sign
in; the login page sends their work address (a domain the organization verified through DNS) to
the organization's own OpenID Provider (an independent oidc-provider on 127.0.0.1); they sign in
there, come back, allow access, and the application lands with a code whose tokens carry the
organization; the Core API shows the new member. Every page is saved as a screenshot under
tests/artifacts/."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from authpi_idp import IdpClient
from selenium.webdriver.common.by import By

from authpi.platform.testing.login import SCOPES, click, fill, page_state, query_of
from authpi.platform.testing.sso import sso_world
from authpi.platform.testing.upstream import PASSWORD as UPSTREAM_PASSWORD


@pytest.fixture
async def world(platform, site, tmp_path):
    async with sso_world(platform, tmp_path, redirect_uri=f"{site.url}/callback") as made:
        yield made


async def test_a_work_address_signs_in_at_its_organizations_idp_in_chromium(world, site, browser):
    org = await world.organization()
    email = org.email("ada")
    t = world.tenant
    app = IdpClient(
        issuer_url=t.issuer_url, client_id=t.web_id, client_secret=t.web_secret,
        redirect_uri=t.redirect_uri,
    )  # fmt: skip
    async with app:
        auth = app.create_authorization_url(scopes=SCOPES)
        await browser.get(auth.url)
        login = await browser.run(page_state)
        assert urlsplit(login["url"]).path == f"/{t.issuer_id}/login"
        assert "single sign-on" in login["text"]
        await browser.screenshot("login")

        # The work address alone: the organization's IdP takes over.
        await browser.run(fill({"email": email}))
        upstream = await browser.run(page_state)
        assert urlsplit(upstream["url"]).netloc == urlsplit(world.upstream.issuer).netloc
        assert upstream["h1"] == "Upstream IdP sign-in"
        hint = await browser.run(lambda d: d.find_element(By.ID, "login").get_attribute("value"))
        assert hint == email  # login_hint
        await browser.screenshot("upstream-login")
        await browser.run(fill({"password": UPSTREAM_PASSWORD}, submit="sign-in"))

        consent = await browser.run(page_state)
        assert urlsplit(consent["url"]).path == f"/{t.issuer_id}/consent", consent
        assert f"Signed in as {email}" in consent["text"]
        await browser.screenshot("consent")
        await browser.run(click("allow"))

        landed_url = await site.wait_for("/callback")
        assert query_of(landed_url)["state"] == auth.state
        await browser.screenshot("landed")
        agent = await app.exchange_callback(landed_url, auth)

    assert agent.email == email and agent.email_verified is True
    assert [o.id for o in agent.organizations] == [org.id]
    members = await world.scope.organization(org.id).members.list(limit=10)
    assert [m.member_id for m in members.data] == [agent.id]

    # Signed in at the issuer now: its login page says so, without asking again.
    await browser.get(f"{t.issuer_url}/login")
    signed_in = await browser.run(page_state)
    assert signed_in["h1"] == "You are signed in", signed_in
    await browser.screenshot("signed-in")
