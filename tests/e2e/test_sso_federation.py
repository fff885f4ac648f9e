"""Organization SSO over HTTP against an independent OpenID Provider (the npm oidc-provider on
127.0.0.1): an address of a verified domain goes from the login page to the organization's
upstream; the person signs in there and comes back signed in as a member of the organization
(created just in time, or linked to the user already holding the address); an unverified domain
routes nowhere; an sso_only organization's people cannot use a password; and an upstream ID
token that was tampered with, carries another nonce or audience, or expired is refused, as are a
replayed or transplanted callback and an address outside the organization's domains. An
invitation sent to such an address is accepted by the SSO sign-in it leads to, and an
organization that requires a second factor gets one after the upstream's sign-in too."""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import jwt
import pytest
from authpi_idp import IdpClient

from authpi.platform.testing.invitations import invite, member_ids, new_org, status_of
from authpi.platform.testing.login import PASSWORD, SCOPES, PortalBrowser, query_of
from authpi.platform.testing.sso import SsoWorld, sso_sign_in, sso_world
from authpi.testing.plugin import eventually

APP = "https://app.example.com/callback"


@pytest.fixture(scope="module")
async def world(platform, tmp_path_factory):
    async with sso_world(platform, tmp_path_factory.mktemp("sso"), redirect_uri=APP) as made:
        yield made


def app_client(world: SsoWorld) -> IdpClient:
    t = world.tenant
    return IdpClient(
        issuer_url=t.issuer_url, client_id=t.web_id, client_secret=t.web_secret,
        redirect_uri=t.redirect_uri,
    )  # fmt: skip


async def claims_of(world: SsoWorld, token: str) -> dict[str, Any]:
    """An access token's claims, verified with the issuer's JWKS."""
    async with httpx.AsyncClient(timeout=30) as http:
        keys = (await http.get(f"{world.tenant.issuer_url}/jwks.json")).json()["keys"]
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(next(k for k in keys if k["kid"] == kid)).key
    return jwt.decode(token, key, algorithms=["ES256", "EdDSA", "RS256"],
                      options={"verify_aud": False})  # fmt: skip


async def members_of(world: SsoWorld, org_id: str) -> dict[str, Any]:
    page = await world.scope.organization(org_id).members.list(limit=100)
    return {m.member_id: m for m in page.data}


async def refusal(world: SsoWorld, email: str) -> httpx.Response:
    """A sign-in through the upstream that must end on a refusal page (never at the app)."""
    async with app_client(world) as app, PortalBrowser() as browser:
        auth = app.create_authorization_url(scopes=SCOPES)
        ended = await sso_sign_in(browser, auth.url, email=email, redirect_uri=APP)
        assert isinstance(ended, httpx.Response), f"signed in: {ended}"
        assert browser.cookie("authpi_session") is None
        return ended


async def verification_failed(world: SsoWorld, reason: str) -> None:
    async def recorded() -> bool:
        found = await world.events("user.verification.failed")
        return any(e.data.get("method") == "sso" and e.data.get("reason") == reason
                   for e in found)  # fmt: skip

    await eventually(recorded)


async def test_a_verified_domain_signs_in_through_the_upstream_just_in_time(world):
    org = await world.organization()
    email = org.email("new")
    assert (await world.discover(email))["org_id"] == org.id
    async with app_client(world) as app, PortalBrowser() as browser:
        auth = app.create_authorization_url(scopes=SCOPES)
        landed = await sso_sign_in(browser, auth.url, email=email, redirect_uri=APP)
        assert isinstance(landed, str), landed.text
        assert query_of(landed)["state"] == auth.state
        hops = [urlsplit(u) for u in browser.trail]
        assert any(h.path.endswith("/sso/start") for h in hops)
        assert any(h.netloc == urlsplit(world.upstream.issuer).netloc for h in hops)
        agent = await app.exchange_callback(landed, auth)

    assert agent.email == email and agent.email_verified is True
    assert [o.id for o in agent.organizations] == [org.id]
    assert agent.organizations[0].scopes == ["member"]
    access = await claims_of(world, agent.tokens.access_token)
    assert [o["id"] for o in access["organizations"]] == [org.id]
    members = await members_of(world, org.id)
    assert members[agent.id].member_type == "user" and members[agent.id].scopes == ["member"]
    user = await world.scope.users.get(agent.id)
    assert user.username == email

    async def provisioned() -> bool:
        found = await world.events("user.sso.provisioned", user_id=agent.id)
        return bool(found) and found[0].data["org_id"] == org.id

    await eventually(provisioned)
    [event] = await world.events("user.sso.provisioned", user_id=agent.id)
    assert event.data["protocol"] == "oidc" and event.data["external_subject"] == email
    assert event.data["external_issuer"] == world.upstream.issuer


async def test_an_existing_user_is_linked_once_and_selects_the_org(world):
    org = await world.organization()
    email = org.email("known")
    existing = await world.scope.users.create({"username": email, "username_type": "email"})
    async with app_client(world) as app:
        for _ in range(2):  # the second sign-in links nothing more
            async with PortalBrowser() as browser:
                auth = app.create_authorization_url(scopes=SCOPES, org=org.id)
                landed = await sso_sign_in(browser, auth.url, email=email, redirect_uri=APP)
                assert isinstance(landed, str), landed.text
                agent = await app.exchange_callback(landed, auth)
            assert agent.id == existing.id and agent.org_id == org.id
    assert existing.id in await members_of(world, org.id)

    async def linked() -> bool:
        return bool(await world.events("user.sso.linked", user_id=existing.id))

    await eventually(linked)
    assert len(await world.events("user.sso.linked", user_id=existing.id)) == 1
    succeeded = await world.events("user.verification.succeeded", user_id=existing.id)
    assert {e.data["method"] for e in succeeded} == {"sso"}


async def test_an_unverified_domain_routes_nowhere(world):
    org = await world.organization(verify=False)
    email = org.email("plain")
    assert await world.discover(email) == {"sso": False}
    async with PortalBrowser() as browser:
        login = f"{world.tenant.issuer_url}/login"
        await browser.sign_up(world.tenant.issuer_url, email)
        browser.http.cookies.clear()
        empty = await browser.submit(login, {"email": email, "password": ""})
        assert empty.status_code == 400 and "incorrect" in empty.text
        signed_in = await browser.submit(login, {"email": email, "password": PASSWORD})
        assert signed_in.status_code == 303
        assert "/sso/" not in signed_in.headers["location"]
    assert email not in str(await members_of(world, org.id))


async def test_an_sso_only_organization_refuses_passwords(world):
    org = await world.organization()
    email = org.email("pw")
    async with PortalBrowser() as browser:
        # Before sso_only a person of the domain may still sign up and in with a password.
        signed_up = await browser.sign_up(world.tenant.issuer_url, email)
        assert signed_up.status_code == 303
    await world.scope.organizations.update(org.id, {"sso": {"sso_only": True}})

    async def only() -> bool:
        return (await world.discover(email)).get("org_id") == org.id

    await eventually(only)
    async with PortalBrowser() as browser:
        answer = await browser.submit(
            f"{world.tenant.issuer_url}/login", {"email": email, "password": PASSWORD}
        )
        assert answer.status_code == 303
        assert urlsplit(answer.headers["location"]).path.endswith("/sso/start")
        assert browser.cookie("authpi_session") is None


@pytest.mark.parametrize(
    "mode, reason",
    [
        ("tampered", "id_token.bad_signature"),
        ("nonce", "id_token.nonce"),
        ("audience", "id_token.audience"),
        ("expired", "id_token.expired"),
    ],
)
async def test_a_bad_upstream_id_token_is_refused(world, mode, reason):
    org = await world.organization(client_id=f"authpi-{mode}")
    email = org.email(mode)
    page = await refusal(world, email)
    assert page.status_code == 401 and "Single sign-on failed" in page.text
    await verification_failed(world, reason)
    assert await members_of(world, org.id) == {}


async def test_an_address_outside_the_organizations_domains_is_refused(world):
    org = await world.organization()
    async with PortalBrowser() as browser:
        ended = await sso_sign_in(
            browser, f"{world.tenant.issuer_url}/login", email=org.email("x"), login="outsider",
            redirect_uri=APP,
        )  # fmt: skip
    assert isinstance(ended, httpx.Response) and ended.status_code == 403
    assert "not in a domain the organization verified" in ended.text
    await verification_failed(world, "sso.domain_unverified")


async def test_a_replayed_or_transplanted_callback_is_refused(world):
    org = await world.organization()
    async with PortalBrowser() as browser:
        callback = await sso_sign_in(
            browser, f"{world.tenant.issuer_url}/login", email=org.email("replay"),
            redirect_uri=APP, stop_at="/sso/callback",
        )  # fmt: skip
        assert isinstance(callback, str), callback.text
        # Opened in another browser (no authpi_sso cookie): refused, and the state is used up.
        async with PortalBrowser() as elsewhere:
            stolen = await elsewhere.get(callback)
        assert stolen.status_code == 403 and "another browser" in stolen.text
        replayed = await browser.get(callback)
        assert replayed.status_code == 400 and "already used" in replayed.text
    assert await members_of(world, org.id) == {}

    async def recorded() -> bool:
        found = await world.events("auth.flow.replay-attempt")
        return any(e.data.get("flow") == "sso" for e in found)

    await eventually(recorded)


@pytest.mark.parametrize("sso_only", [False, True])
async def test_an_invitation_is_accepted_by_the_sso_sign_in_it_leads_to(world, mailbox, sso_only):
    """An invitation to another organization, sent to an address of an SSO organization's
    verified domain: accepting sends the person to sign in (an existing account, no password
    typed) or to sign up (no account yet, an sso_only organization), the address goes to the
    upstream, and the SSO sign-in accepts the invitation."""
    sso_org = await world.organization(sso_only=sso_only)
    email = sso_org.email("invited")
    if not sso_only:
        await world.scope.users.create({"username": email, "username_type": "email"})
    partner = await new_org(world.tenant, "Partner Labs")
    invitation_id, link = await invite(world.tenant, partner, email, mailbox)
    invitation_page = f"{world.tenant.issuer_url}/invitation"
    async with PortalBrowser() as person:
        decide = (await person.page(link))[1]
        to_sign_in = await person.send(decide, {"decision": "accept"})
        assert to_sign_in.status_code == 303
        entry = urljoin(world.tenant.issuer_url, to_sign_in.headers["location"])
        assert urlsplit(entry).path.endswith("/signup" if sso_only else "/login")
        # Another address of the SSO domain is refused before any sign-in starts.
        other = await person.submit(entry, {"email": sso_org.email("other"), "password": ""})
        assert other.status_code == 403 and "another email address" in other.text
        if sso_only:
            form = {"email": email, "password": PASSWORD, "name": "Jo"}
            to_sso = await person.submit(entry, form)
            assert urlsplit(to_sso.headers["location"]).path.endswith("/sso/start")
            entry = urljoin(world.tenant.issuer_url, to_sso.headers["location"])
        back = await sso_sign_in(person, entry, email=email, redirect_uri=invitation_page)
        assert isinstance(back, str), back.text
        assert query_of(back)["token"] == query_of(link)["token"]
        assert person.cookie("authpi_session") is not None
        joined = await person.get(back)
        assert joined.status_code == 200 and "You have joined Partner Labs" in joined.text
    assert await status_of(world.tenant, partner, invitation_id) == "accepted"
    [member] = await member_ids(world.tenant, partner)
    assert member in await members_of(world, sso_org.id)
    assert (await world.scope.users.get(member)).username == email


async def test_an_sso_sign_in_passes_the_second_factor_its_organization_requires(world):
    org = await world.organization(security={"mfa_required": True})
    async with app_client(world) as app, PortalBrowser() as browser:
        auth = app.create_authorization_url(scopes=SCOPES)
        at = await sso_sign_in(
            browser, auth.url, email=org.email("mfa"), redirect_uri=APP, stop_at="/mfa"
        )
        assert isinstance(at, str), at.text
        assert browser.cookie("authpi_session") is None
        assert browser.cookie("authpi_mfa") is not None
        assert browser.cookie("authpi_sso") is None  # the SSO sign-in is over
        enrol = await browser.get(at)
        assert enrol.status_code == 200 and "Set up two-step verification" in enrol.text
