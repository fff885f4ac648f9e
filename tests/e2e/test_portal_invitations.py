"""Organization invitations through the hosted portal over HTTP (core-api.md 3.15, idp-api.md
12.6), the cases around the browser flows: an invitation page opened inside an application's
authorization request continues to the application once accepted, with the organization in the
tokens; a suspended organization's invitations are frozen (a page says so, nothing changes, and
they work again once it is active); an organization that stopped taking invitations refuses the
acceptance."""

from __future__ import annotations

from urllib.parse import urljoin

import pytest
from authpi_idp import IdpClient

from authpi.platform.testing.invitations import ORG, invite, member_ids, new_org, status_of
from authpi.platform.testing.login import (
    PASSWORD,
    SCOPES,
    LoginTenant,
    PortalBrowser,
    login_tenant,
    new_email,
    query_of,
)


@pytest.fixture
async def tenant(platform):
    made = await login_tenant(platform, name="invitation-flows")
    yield made
    await made.admin.close()


async def test_an_invitation_inside_an_authorization_continues_to_the_application(
    tenant: LoginTenant, mailbox
):
    t = tenant
    email = new_email("flow")
    async with PortalBrowser() as setup:
        assert (await setup.sign_up(t.issuer_url, email, PASSWORD)).status_code == 303
    org_id = await new_org(t)
    _, link = await invite(t, org_id, email, mailbox)
    app = IdpClient(issuer_url=t.issuer_url, client_id=t.spa_id, redirect_uri=t.redirect_uri)
    async with app, PortalBrowser() as person:
        auth = app.create_authorization_url(scopes=SCOPES)
        started = await person.get(auth.url)
        flow = query_of(started.headers["location"])["flow"]
        decide = (await person.page(f"{link}&flow={flow}"))[1]
        to_login = await person.send(decide, {"decision": "accept"})
        assert to_login.status_code == 303
        login = to_login.headers["location"]
        assert query_of(login) == {"flow": flow, "invitation": query_of(link)["token"]}
        consent = await person.submit(
            urljoin(t.issuer_url, login), {"email": email, "password": PASSWORD}
        )
        assert consent.status_code == 303
        assert consent.headers["location"].endswith(f"/consent?flow={flow}")
        landed = await person.submit(
            urljoin(t.issuer_url, consent.headers["location"]), {}, button="allow"
        )
        callback = landed.headers["location"]
        assert callback.startswith(t.redirect_uri)
        agent = await app.exchange_callback(callback, auth)
    assert [o.id for o in agent.organizations] == [org_id]
    assert await member_ids(t, org_id) == [agent.id]


async def test_a_suspended_organizations_invitations_are_frozen(tenant: LoginTenant, mailbox):
    t = tenant
    email = new_email("frozen")
    org_id = await new_org(t)
    invitation_id, link = await invite(t, org_id, email, mailbox)
    orgs = t.admin.issuer(t.issuer_id).organizations
    async with PortalBrowser() as person:
        assert (await person.sign_up(t.issuer_url, email, PASSWORD)).status_code == 303
        decide = (await person.page(link))[1]
        await orgs.update(org_id, {"status": "suspended"})
        shown = await person.get(link)
        assert shown.status_code == 409 and "Invitations paused" in shown.text
        assert f"{ORG} is suspended" in shown.text
        for decision in ("accept", "decline"):
            refused = await person.send(decide, {"decision": decision})
            assert refused.status_code == 409 and "Invitations paused" in refused.text
        assert await member_ids(t, org_id) == []
        assert await status_of(t, org_id, invitation_id) == "pending"

        await orgs.update(org_id, {"status": "active"})
        accepted = await person.send(decide, {"decision": "accept"})
        assert accepted.status_code == 303, accepted.text
        joined = await person.get(link)
        assert joined.status_code == 200 and f"You have joined {ORG}" in joined.text
    assert len(await member_ids(t, org_id)) == 1


async def test_an_organization_that_stopped_taking_invitations_refuses_acceptance(
    tenant: LoginTenant, mailbox
):
    t = tenant
    email = new_email("closed")
    org_id = await new_org(t)
    invitation_id, link = await invite(t, org_id, email, mailbox)
    async with PortalBrowser() as person:
        assert (await person.sign_up(t.issuer_url, email, PASSWORD)).status_code == 303
        decide = (await person.page(link))[1]
        await t.admin.issuer(t.issuer_id).organizations.update(
            org_id, {"invitation_enabled": False}
        )
        shown = await person.get(link)
        assert shown.status_code == 409 and "Invitations closed" in shown.text
        refused = await person.send(decide, {"decision": "accept"})
        assert refused.status_code == 409 and "not accepting invitations" in refused.text
    assert await member_ids(t, org_id) == []
    assert await status_of(t, org_id, invitation_id) == "pending"
