"""The pages around the portal's forms, over real HTTP: the error pages of /authorize and /logout
(the portal's page and headers, status 400, never a redirect, never JSON), the way back to the
application after a sign-out or an email verification (only through registered URIs), the
consent page naming the signed-in account with a way to use another, and mail forms that show
only their confirmation once sent."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from authpi.platform.testing.mail import Mailbox
from authpi.testing.plugin import eventually
from services.token.tests.integration.test_portal import (
    EVIL,
    PASSWORD,
    Browser,
    authorization,
    email,
    portal_issuer,
    sign_up,
    start,
)

PORTAL_HEADERS = ("content-security-policy", "x-frame-options", "x-content-type-options")


async def tenant_of(platform, issuer_with_keys, admin_of, settings=None):
    return await portal_issuer(platform, issuer_with_keys, admin_of, settings)


def assert_portal_page(answer: Any) -> None:
    assert answer.headers["content-type"].startswith("text/html")
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    nonce = policy.split("'nonce-", 1)[1].split("'", 1)[0]
    assert f'<style nonce="{nonce}">' in answer.text
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["cache-control"] == "no-store"
    assert "location" not in answer.headers


async def test_authorize_errors_are_branded_portal_pages(platform, issuer_with_keys, admin_of):
    settings = {"branding": {"display_name": '"Quoted" Corp'}}
    admin, issuer_id = await tenant_of(platform, issuer_with_keys, admin_of, settings)
    client_id, redirect_uri = await authorization(platform, admin, issuer_id)
    async with Browser(platform, issuer_id) as b:
        unregistered = await start(b, client_id, redirect_uri + "x")
        unknown = await b.get(
            "/authorize", response_type="code", client_id=EVIL, redirect_uri=redirect_uri,
            scope="openid", code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            code_challenge_method="S256",
        )  # fmt: skip
    for answer in (unregistered, unknown):
        assert answer.status_code == 400
        assert_portal_page(answer)
        assert "This sign-in link is not valid for this application" in answer.text
        assert 'id="detail"' in answer.text and "<script>" not in answer.text
        assert "&#34;Quoted&#34; Corp" in answer.text  # the issuer's name, escaped
        assert '<span class="mark" aria-hidden="true">Q</span>' in answer.text
    assert "redirect_uri" in unregistered.text


async def id_token_of(platform, admin, issuer_id: str, post_logout: list[str]) -> tuple[str, str]:
    """A client with `post_logout` registered, and an ID token a signed-in person got for it."""
    redirect_uri = "http://127.0.0.1/callback"
    client = await admin.issuer(issuer_id).clients.create(
        {"name": "Acme <b>Notes</b>", "type": "spa", "settings": {
            "redirect_uris": [redirect_uri], "post_logout_redirect_uris": post_logout,
            "scopes": ["openid", "email"]}}
    )  # fmt: skip
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    params = {
        "response_type": "code", "client_id": client.id, "redirect_uri": redirect_uri,
        "scope": "openid email", "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }  # fmt: skip
    address = email()
    async with Browser(platform, issuer_id) as b:

        async def known() -> bool:
            return (await b.get("/authorize", **params)).status_code == 302

        await eventually(known)
        await sign_up(b, address)
        location = (await b.get("/authorize", **params)).headers["location"]
        if "/consent?flow=" in location:
            location = (await b.submit(location, {"decision": "allow"})).headers["location"]
        code = parse_qs(urlsplit(location).query)["code"][0]
        tokens = await b.http.post(
            f"{b.base}/token",
            data={"grant_type": "authorization_code", "code": code, "client_id": client.id,
                  "redirect_uri": redirect_uri, "code_verifier": verifier},
        )  # fmt: skip
    assert tokens.status_code == 200, tokens.text
    return client.id, tokens.json()["id_token"]


async def test_logout_errors_are_portal_pages_not_json(platform, issuer_with_keys, admin_of):
    admin, issuer_id = await tenant_of(platform, issuer_with_keys, admin_of)
    _, id_token = await id_token_of(platform, admin, issuer_id, ["https://app.example.com/bye"])
    async with Browser(platform, issuer_id) as b:
        missing = await b.get("/logout")
        invalid = await b.get("/logout", id_token_hint="not.a.token")
        unregistered = await b.get(
            "/logout", id_token_hint=id_token, post_logout_redirect_uri="https://evil.example/"
        )
        posted = await b.http.post(f"{b.base}/logout", data={"state": "x"})
    for answer in (missing, invalid, unregistered, posted):
        assert answer.status_code == 400, answer.text
        assert_portal_page(answer)
        assert "<h1>Sign-out failed</h1>" in answer.text
    assert "id_token_hint" in missing.text
    assert "post_logout_redirect_uri" in unregistered.text
    assert "evil.example" not in unregistered.text


async def test_signed_out_page_leads_back_to_the_client_through_its_registered_uri(
    platform, issuer_with_keys, admin_of
):
    admin, issuer_id = await tenant_of(platform, issuer_with_keys, admin_of)
    bye = "https://app.example.com/bye"
    client_id, id_token = await id_token_of(platform, admin, issuer_id, [bye])
    async with Browser(platform, issuer_id) as b:
        out = await b.get("/logout", id_token_hint=id_token)
        assert out.status_code == 302
        target = out.headers["location"]
        assert urlsplit(target).path == f"/{issuer_id}/signed-out"
        assert parse_qs(urlsplit(target).query) == {"client_id": [client_id]}
        page = await b.get(target)
        # a client_id made up in the address bar gets the plain page, never a URL from it
        forged = await b.get("/signed-out", client_id="https://evil.example/")
    assert page.status_code == 200
    assert f'href="{bye}" id="continue">Return to Acme &lt;b&gt;Notes&lt;/b&gt;' in page.text
    assert f'href="/{issuer_id}/login" id="secondary">Sign in again' in page.text
    assert f'href="/{issuer_id}/login" id="continue">Sign in again' in forged.text
    assert "evil.example" not in forged.text


async def test_consent_names_the_account_and_another_account_signs_out_first(
    platform, issuer_with_keys, admin_of
):
    admin, issuer_id = await tenant_of(platform, issuer_with_keys, admin_of)
    client_id, redirect_uri = await authorization(platform, admin, issuer_id)
    address = email()
    async with Browser(platform, issuer_id) as b:
        await sign_up(b, address)
        consent_url = (await start(b, client_id, redirect_uri)).headers["location"]
        assert "/consent?flow=" in consent_url
        flow_id = consent_url.split("flow=", 1)[1]
        consent = await b.get(consent_url)
        assert f'Signed in as <strong class="address">{address}</strong>' in consent.text
        assert 'value="switch"' in consent.text
        refused = await b.submit(consent_url, {"decision": "switch"}, csrf=None)
        assert refused.status_code == 403  # a CSRF-protected POST
        switched = await b.submit(consent_url, {"decision": "switch"})
        assert switched.status_code == 303
        assert switched.headers["location"] == f"/{issuer_id}/login?{urlencode({'flow': flow_id})}"
        cookie = switched.headers["set-cookie"]
        assert "authpi_session=;" in cookie or 'authpi_session="";' in cookie
        b.http.cookies.delete("authpi_session")
        # the session is over: the consent page sends the browser to sign in again
        again = await b.get(consent_url)
    assert again.status_code == 302 and "/login?flow=" in again.headers["location"]


async def test_verification_and_sign_up_pages_say_what_comes_next(
    platform, issuer_with_keys, admin_of, mailbox: Mailbox
):
    admin, issuer_id = await tenant_of(platform, issuer_with_keys, admin_of)
    client_id, redirect_uri = await authorization(platform, admin, issuer_id)
    address = email()
    async with Browser(platform, issuer_id) as b:
        login_url = (await start(b, client_id, redirect_uri)).headers["location"]
        flow_id = login_url.split("flow=", 1)[1]
        await b.submit("/signup", {"email": address, "password": PASSWORD}, flow=flow_id)
        mail = await mailbox.wait_for(to=address, subject_contains="Verify your email")
        verified = await b.get(mail.link("/verify-email?token="))
    assert f'href="/{issuer_id}/login?flow={flow_id}" id="continue">Continue to Acme' in (
        verified.text
    )
    plain = email()
    async with Browser(platform, issuer_id) as b:  # a sign-up with no authorization pending
        created = await sign_up(b, plain)
        assert created.status_code == 303
        landing = await b.get(created.headers["location"])
    assert "You are signed in" in landing.text
    assert "Go back to the application you want to use" in landing.text


async def test_a_sent_reset_request_shows_only_its_confirmation(
    platform, issuer_with_keys, admin_of
):
    _, issuer_id = await tenant_of(platform, issuer_with_keys, admin_of)
    async with Browser(platform, issuer_id) as b:
        sent = await b.submit("/password/forgot", {"email": email()})
    assert sent.status_code == 200 and "If an account exists" in sent.text
    assert not re.search(r"<form|id=\"submit\"|id=\"email\"", sent.text)
    assert f'<a href="/{issuer_id}/password/forgot" id="again">send again</a>' in sent.text
