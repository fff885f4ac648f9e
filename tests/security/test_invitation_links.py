"""Attacks on organization invitations through the hosted portal (core-api.md 3.15, idp-api.md
12.6), over HTTP as a browser would send them: a link used a second time, an expired link, a
revoked link, an invitation accepted by someone signed in with another address (from the
invitation's page, its sign-in and its sign-up), and a sign-up without an invitation on an
`invite_only` issuer. Each is refused with a page that says why, and the Core API shows that
nothing changed: no membership, no account, the invitation as it was."""

from __future__ import annotations

import time

import pytest

from authpi.errors import AccessDenied
from authpi.platform.testing.invitations import (
    invite,
    invite_only_tenant,
    member_ids,
    new_org,
    status_of,
)
from authpi.platform.testing.login import (
    PASSWORD,
    Form,
    LoginTenant,
    PortalBrowser,
    form_of,
    login_tenant,
    new_email,
    query_of,
)
from authpi.platform.testing.tenants import part
from authpi.testing.plugin import eventually


@pytest.fixture
async def tenant(platform):
    made = await login_tenant(platform, name="invitation-attacks")
    yield made
    await made.admin.close()


@pytest.fixture
async def invite_only(platform):
    made = await invite_only_tenant(platform)
    yield made
    await made.admin.close()


async def user_ids(t: LoginTenant) -> set[str]:
    return {u.user_id async for u in t.admin.issuer(t.issuer_id).users.list_all()}


async def form_at(person: PortalBrowser, url: str) -> Form:
    """The one form of the page at `url`, as the person's browser holds it (CSRF included)."""
    return (await person.page(url))[1]


def token_of(link: str) -> str:
    return query_of(link)["token"]


async def signed_up(t: LoginTenant, email: str) -> PortalBrowser:
    """A browser signed in as a new account of `email` (the issuer's sign-up signs in)."""
    person = PortalBrowser()
    assert (await person.sign_up(t.issuer_url, email, PASSWORD)).status_code == 303
    return person


async def test_a_reused_invitation_link_is_refused(tenant: LoginTenant, mailbox):
    t = tenant
    org_id = await new_org(t)
    email = new_email("reuse")
    invitation_id, link = await invite(t, org_id, email, mailbox)
    async with await signed_up(t, email) as person:
        decide = await form_at(person, link)
        accepted = await person.send(decide, {"decision": "accept"})
        assert accepted.status_code == 303, accepted.text
        [member] = await member_ids(t, org_id)
        # The same form again, and the link in another browser: both refused, nothing changes.
        again = await person.send(decide, {"decision": "accept"})
        assert again.status_code == 410 and "Invitation already used" in again.text
        declined = await person.send(decide, {"decision": "decline"})
        assert declined.status_code == 410
    async with PortalBrowser() as stranger:
        shown = await stranger.get(link)
        assert shown.status_code == 410 and "Invitation already used" in shown.text
        signup = await stranger.get(f"{t.issuer_url}/signup?invitation={token_of(link)}")
        assert signup.status_code == 410
    assert await member_ids(t, org_id) == [member]
    assert await status_of(t, org_id, invitation_id) == "accepted"


async def test_an_expired_invitation_link_is_refused(tenant: LoginTenant, mailbox):
    t = tenant
    org_id = await new_org(t)
    email = new_email("expired")
    expires_at = int(time.time() * 1000) + 2000
    invitation_id, link = await invite(t, org_id, email, mailbox, expires_at=expires_at)
    before = await user_ids(t)
    async with PortalBrowser() as person:
        decide = await form_at(person, link)  # opened while it was still valid
        signup = await form_at(person, f"{t.issuer_url}/signup?invitation={token_of(link)}")

        async def expired() -> bool:  # expiry is read lazily (core-api.md 3.15)
            return await status_of(t, org_id, invitation_id) == "expired"

        await eventually(expired)
        shown = await person.get(link)
        assert shown.status_code == 410 and "Invitation expired" in shown.text
        accepted = await person.send(decide, {"decision": "accept"})
        assert accepted.status_code == 410 and "Invitation expired" in accepted.text
        created = await person.send(
            signup, {"email": email, "password": PASSWORD, "name": "Late Comer"}
        )
        assert created.status_code == 410 and "Invitation expired" in created.text
    assert await member_ids(t, org_id) == []
    assert await user_ids(t) == before


async def test_a_revoked_invitation_link_is_refused(tenant: LoginTenant, mailbox):
    t = tenant
    org_id = await new_org(t)
    email = new_email("revoked")
    invitation_id, link = await invite(t, org_id, email, mailbox)
    before = await user_ids(t)
    async with PortalBrowser() as person:
        decide = await form_at(person, link)
        signup = await form_at(person, f"{t.issuer_url}/signup?invitation={token_of(link)}")
        await t.admin.issuer(t.issuer_id).organization(org_id).invitations.revoke(invitation_id)
        shown = await person.get(link)  # read-your-writes: the very next page knows
        assert shown.status_code == 410 and "Invitation withdrawn" in shown.text
        accepted = await person.send(decide, {"decision": "accept"})
        assert accepted.status_code == 410 and "Invitation withdrawn" in accepted.text
        created = await person.send(
            signup, {"email": email, "password": PASSWORD, "name": "Too Late"}
        )
        assert created.status_code == 410 and "Invitation withdrawn" in created.text
    assert await member_ids(t, org_id) == []
    assert await user_ids(t) == before
    assert await status_of(t, org_id, invitation_id) == "revoked"


async def test_another_address_cannot_accept_an_invitation(tenant: LoginTenant, mailbox):
    t = tenant
    org_id = await new_org(t)
    invited, intruder = new_email("invited"), new_email("intruder")
    invitation_id, link = await invite(t, org_id, invited, mailbox)
    token = token_of(link)
    before = await user_ids(t)
    async with await signed_up(t, intruder) as person:
        # Signed in as another address: the page says so and offers no acceptance.
        shown = await person.get(link)
        assert shown.status_code == 200 and "sent to another email address" in shown.text
        assert 'value="accept"' not in shown.text
        decide = form_of(shown.text, str(shown.url))
        forced = await person.send(decide, {"decision": "accept"})  # the button's value, forged
        assert forced.status_code == 403 and "sent to another email address" in forced.text
        # Signing in or up from the invitation with another address is refused as well.
        login = await form_at(person, f"{t.issuer_url}/login?invitation={token}")
        signed_in = await person.send(login, {"email": intruder, "password": PASSWORD})
        assert signed_in.status_code == 403 and "sent to another email address" in signed_in.text
        # "Use another account" ends the session and leads back to the invitation.
        switched = await person.send(decide, {"decision": "switch"})
        assert switched.status_code == 303 and person.cookie("authpi_session") is None
        again = await person.get(link)
        assert again.status_code == 200 and "Accept invitation" in again.text
    async with PortalBrowser() as stranger:
        signup = await form_at(stranger, f"{t.issuer_url}/signup?invitation={token}")
        other = new_email("other")
        created = await stranger.send(
            signup, {"email": other, "password": PASSWORD, "name": "Someone Else"}
        )
        assert created.status_code == 403 and "sent to another email address" in created.text
    assert await member_ids(t, org_id) == []
    assert len(await user_ids(t) - before) == 1  # the intruder's own account, nothing more
    assert await status_of(t, org_id, invitation_id) == "pending"


async def test_invite_only_refuses_an_uninvited_signup(platform, invite_only: LoginTenant):
    t = invite_only
    before = await user_ids(t)
    email = new_email("uninvited")
    async with PortalBrowser() as person:
        page = await person.get(f"{t.issuer_url}/signup")
        assert page.status_code == 403 and "by invitation only" in page.text
        assert "<form" not in page.text
        # The form posted anyway (with the CSRF field of the sign-in page), and with an
        # invitation token that names nothing: refused, nothing created.
        login = await form_at(person, f"{t.issuer_url}/login")
        forged = await person.post(
            f"{t.issuer_url}/signup",
            {"csrf": login.fields["csrf"], "email": email, "password": PASSWORD, "name": "X"},
        )
        assert forged.status_code == 403 and "by invitation only" in forged.text
        guessed = await person.post(
            f"{t.issuer_url}/signup?invitation=not-an-invitation",
            {"csrf": login.fields["csrf"], "email": email, "password": PASSWORD, "name": "X"},
        )
        assert guessed.status_code == 404 and "Invalid invitation link" in guessed.text
    # The directory refuses such a sign-up itself, whoever asks.
    with pytest.raises(AccessDenied):
        await part(platform, "user_registry").register(
            account_id=platform.account_id, issuer_id=t.issuer_id, username_type="email",
            username=email, profile={},
        )  # fmt: skip
    assert await user_ids(t) == before
