"""Organization invitations in a real browser (headless Chromium, core-api.md 3.15, idp-api.md
12.6): an administrator invites through the official admin SDK, the invitee opens the link from
the mail the platform sent (read from the development mail sink), sees the organization and who
invited them, and accepts as a new user (signing up on an `invite_only` issuer) or as an
existing one (signing in), or declines. The Core API shows the membership on the very next read,
and the next token of an application carries the organization. Every page is saved as a
screenshot under tests/artifacts/."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from authpi_idp import IdpClient

from authpi.platform.testing.invitations import (
    ORG,
    invite,
    invite_only_tenant,
    member_ids,
    new_org,
)
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
)


@pytest.fixture
async def invite_only(platform, site):
    made = await invite_only_tenant(
        platform, redirect_uri=f"{site.url}/callback", post_logout_uri=f"{site.url}/signed-out",
        client_name="Acme Notes",
    )  # fmt: skip
    yield made
    await made.admin.close()


@pytest.fixture
async def tenant(platform, site):
    made = await login_tenant(
        platform, name="invitations", redirect_uri=f"{site.url}/callback",
        post_logout_uri=f"{site.url}/signed-out", client_name="Acme Notes",
    )  # fmt: skip
    yield made
    await made.admin.close()


async def the_invitation_page(browser) -> dict:
    shown = await browser.run(page_state)
    assert shown["h1"] == f"Join {ORG}", shown
    assert f"Alice Demir invited you to join {ORG}." in shown["text"]
    assert "Robot Wrangler" in shown["text"] and "The whole team is already here." in shown["text"]
    return shown


async def next_token_has(t: LoginTenant, browser, site, org_id: str) -> None:
    """An application's sign-in right after, in the same browser (signed in at the issuer):
    consent, the code, and tokens whose organizations claim holds `org_id`."""
    app = IdpClient(issuer_url=t.issuer_url, client_id=t.spa_id, redirect_uri=t.redirect_uri)
    async with app:
        auth = app.create_authorization_url(scopes=SCOPES)
        await browser.get(auth.url)
        consent = await browser.run(page_state)
        assert consent["h1"] == "Allow access?", consent
        await browser.run(click("allow"))
        agent = await app.exchange_callback(await site.wait_for("/callback"), auth)
        assert [o.id for o in agent.organizations] == [org_id]
        assert agent.email_verified is True  # the invitation's link proved the address


async def test_a_new_user_accepts_by_signing_up_on_an_invite_only_issuer_in_chromium(
    invite_only: LoginTenant, site, browser, mailbox
):
    t = invite_only
    org_id = await new_org(t)
    email = new_email("newcomer")
    invitation_id, link = await invite(t, org_id, email, mailbox)

    await browser.get(link)
    await the_invitation_page(browser)
    await browser.screenshot("invitation")
    await browser.run(click("accept"))

    signup = await browser.run(page_state)
    assert urlsplit(signup["url"]).path == f"/{t.issuer_id}/signup", signup
    assert signup["alerts"] == [
        f"Sign up with the address this invitation was sent to, to join {ORG}."
    ]
    await browser.screenshot("invitation-signup")
    await browser.run(fill({"name": "Dana Scully", "email": email, "password": PASSWORD}))

    joined = await browser.run(page_state)
    assert joined["h1"] == f"You have joined {ORG}", joined
    await browser.screenshot("invitation-joined")

    # Read-your-writes: the very next Core API reads show the membership and the acceptance.
    [user_id] = await member_ids(t, org_id)
    user = await t.admin.issuer(t.issuer_id).users.get(user_id)
    assert user.username == email and user.status == "active"
    got = await t.admin.issuer(t.issuer_id).organization(org_id).invitations.get(invitation_id)
    assert got.status == "accepted" and got.user_id_invited == user_id
    await next_token_has(t, browser, site, org_id)

    # The link worked once: opened again (in another browser), it says so.
    async with PortalBrowser() as other:
        again = await other.get(link)
    assert again.status_code == 410 and "Invitation already used" in again.text


async def test_an_existing_user_accepts_by_signing_in_in_chromium(
    tenant: LoginTenant, site, browser, mailbox
):
    t = tenant
    email = new_email("member")
    async with PortalBrowser() as b:
        assert (await b.sign_up(t.issuer_url, email, PASSWORD)).status_code == 303
    org_id = await new_org(t)
    invitation_id, link = await invite(t, org_id, email, mailbox)

    await browser.get(link)
    await the_invitation_page(browser)
    await browser.run(click("accept"))
    login = await browser.run(page_state)
    assert urlsplit(login["url"]).path == f"/{t.issuer_id}/login", login
    assert login["alerts"] == [
        f"Sign in with the address this invitation was sent to, to join {ORG}."
    ]
    await browser.screenshot("invitation-login")
    await browser.run(fill({"email": email, "password": PASSWORD}))

    joined = await browser.run(page_state)
    assert joined["h1"] == f"You have joined {ORG}", joined
    await browser.screenshot("invitation-joined")
    [user_id] = await member_ids(t, org_id)
    got = await t.admin.issuer(t.issuer_id).organization(org_id).invitations.get(invitation_id)
    assert got.status == "accepted" and got.user_id_invited == user_id
    await next_token_has(t, browser, site, org_id)


async def test_declining_records_the_answer_in_chromium(tenant: LoginTenant, browser, mailbox):
    t = tenant
    org_id = await new_org(t)
    email = new_email("no-thanks")
    invitation_id, link = await invite(t, org_id, email, mailbox)

    await browser.get(link)
    await the_invitation_page(browser)
    await browser.run(click("decline"))
    declined = await browser.run(page_state)
    assert declined["h1"] == "Invitation declined", declined
    assert f"You declined the invitation to join {ORG}." in declined["text"]
    await browser.screenshot("invitation-declined")

    got = await t.admin.issuer(t.issuer_id).organization(org_id).invitations.get(invitation_id)
    assert got.status == "declined" and got.declined_at
    assert await member_ids(t, org_id) == []
    # Declining destroyed the invitation's data key: its address is unreadable from now on.
    assert got.email_invited == "" and got.inviter is None

    await browser.get(link)  # the link again: it says the invitation was declined
    again = await browser.run(page_state)
    assert again["h1"] == "Invitation declined", again
    # The inviter's name went with the key (it was sealed with the address).
    assert "ask the person who invited you for a new one" in again["text"]
    assert "Alice Demir" not in again["text"]
    assert await browser.run(lambda d: d.find_elements("id", "accept")) == []
    await browser.screenshot("invitation-declined-again")
