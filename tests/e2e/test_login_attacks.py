"""Attacks on human login from outside the platform, over HTTP only (and a real browser for the
injection checks): PKCE downgrades and malformed challenges, redirect URIs that differ by a
character, codes and refresh tokens used by the wrong client or after they were spent, tokens and
flows of one issuer at another, open redirects through logout, CSRF on the portal's forms,
session fixation, and markup in a person's name, a client's name and an issuer's branding.

The basic cases (no PKCE, plain PKCE, a wrong verifier, an appended character, code replay, one
refresh reuse, cross-issuer code and refresh, an unregistered post-logout URI, a login POST
without CSRF, escaped branding on the login page) are covered by the token service's integration
tests; these are the variants around them, each signed in through the hosted portal's forms."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from authpi.platform.testing.login import (
    PASSWORD,
    LoginTenant,
    PortalBrowser,
    alert_open,
    click,
    client_ready,
    fill,
    form_of,
    login_tenant,
    new_email,
    query_of,
)
from authpi.testing.plugin import eventually

EVIL = '"><script>alert(1)</script><img src=x onerror=alert(2) id=injected>'
SCOPE = "openid profile email"


# Helpers


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(t: LoginTenant, client_id: str, **params: str) -> str:
    query = {
        "response_type": "code", "client_id": client_id, "redirect_uri": t.redirect_uri,
        "scope": SCOPE, "state": secrets.token_urlsafe(8), **params,
    }  # fmt: skip
    return f"{t.issuer_url}/authorize?{urlencode(query)}"


@dataclass
class Tokens:
    client_id: str
    verifier: str
    code: str
    access_token: str
    refresh_token: str
    id_token: str


def client_auth(t: LoginTenant, client_id: str) -> dict[str, str]:
    if client_id == t.web_id:
        return {"client_id": t.web_id, "client_secret": t.web_secret}
    return {"client_id": client_id}


async def code_for(t: LoginTenant, b: PortalBrowser, email: str, client_id: str) -> tuple[str, str]:
    """(code, verifier) of an authorization the person completes in browser `b`."""
    verifier, challenge = pkce()
    url = authorize_url(t, client_id, code_challenge=challenge, code_challenge_method="S256")
    callback = await b.authorize(url, email, PASSWORD, redirect_uri=t.redirect_uri)
    return query_of(callback)["code"], verifier


async def exchange(t: LoginTenant, client_id: str, code: str, verifier: str) -> httpx.Response:
    return await t.token(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": t.redirect_uri,
         "code_verifier": verifier, **client_auth(t, client_id)}
    )  # fmt: skip


async def signed_in(t: LoginTenant, b: PortalBrowser, email: str, client_id: str) -> Tokens:
    code, verifier = await code_for(t, b, email, client_id)
    response = await exchange(t, client_id, code, verifier)
    assert response.status_code == 200, response.text
    body = response.json()
    return Tokens(
        client_id=client_id, verifier=verifier, code=code, access_token=body["access_token"],
        refresh_token=body["refresh_token"], id_token=body["id_token"],
    )  # fmt: skip


async def refresh(t: LoginTenant, client_id: str, refresh_token: str) -> httpx.Response:
    return await t.token(
        {"grant_type": "refresh_token", "refresh_token": refresh_token,
         **client_auth(t, client_id)}
    )  # fmt: skip


def oauth_error(response: httpx.Response) -> str:
    assert response.status_code in (400, 401), (response.status_code, response.text)
    return response.json()["error"]


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))


def assert_inert(html: str) -> None:
    """No markup from the payload made it into the document: no script element, no element
    with the payload's id, no event-handler attribute, and the raw payload is nowhere."""
    parser = _Elements()
    parser.feed(html)
    assert [tag for tag, _ in parser.elements if tag == "script"] == []
    assert [a for _, a in parser.elements if a.get("id") == "injected"] == []
    assert [(t, a) for t, a in parser.elements if any(k.startswith("on") for k in a)] == []
    assert EVIL not in html and "<script>alert" not in html


async def new_person(t: LoginTenant, name: str = "Ada Lovelace") -> str:
    email = new_email("attack")
    async with PortalBrowser() as b:
        created = await b.sign_up(t.issuer_url, email, PASSWORD, name=name)
        assert created.status_code == 303, created.text
    return email


@pytest.fixture
async def tenant(platform):
    made = await login_tenant(platform, name="attacks")
    yield made
    await made.admin.close()


@pytest.fixture
async def person(tenant: LoginTenant) -> str:
    return await new_person(tenant)


# PKCE


@pytest.mark.parametrize(
    ("label", "params"),
    [
        ("no method (RFC 7636 default: plain)", {"code_challenge": pkce()[1]}),
        ("lower-case method", {"code_challenge": pkce()[1], "code_challenge_method": "s256"}),
        ("unknown method", {"code_challenge": pkce()[1], "code_challenge_method": "S512"}),
        ("42 characters", {"code_challenge": pkce()[1][:42], "code_challenge_method": "S256"}),
        ("44 characters", {"code_challenge": pkce()[1] + "A", "code_challenge_method": "S256"}),
        ("not base64url", {"code_challenge": "+/" * 21 + "A", "code_challenge_method": "S256"}),
        ("method without challenge", {"code_challenge_method": "S256"}),
    ],
)
async def test_malformed_or_downgraded_pkce_is_refused_before_login(
    tenant: LoginTenant, label: str, params: dict[str, str]
):
    state = "pkce-" + secrets.token_hex(4)
    async with PortalBrowser() as b:
        answer = await b.get(authorize_url(tenant, tenant.spa_id, state=state, **params))
    assert answer.status_code == 302, label
    location = answer.headers["location"]
    assert location.startswith(f"{tenant.redirect_uri}?"), (label, location)
    got = query_of(location)
    assert (got["error"], got["state"]) == ("invalid_request", state), label
    assert "code" not in got


async def test_code_verifier_downgrades_are_invalid_grant(tenant: LoginTenant, person: str):
    async with PortalBrowser() as b:
        code, verifier = await code_for(tenant, b, person, tenant.spa_id)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    base = {"grant_type": "authorization_code", "code": code, "redirect_uri": tenant.redirect_uri,
            "client_id": tenant.spa_id}  # fmt: skip
    missing = await tenant.token(base)
    assert oauth_error(missing) in ("invalid_grant", "invalid_request")
    as_plain = await tenant.token({**base, "code_verifier": challenge.rstrip(b"=").decode()})
    assert oauth_error(as_plain) == "invalid_grant"  # the challenge itself (a plain downgrade)
    too_short = await tenant.token({**base, "code_verifier": verifier[:42]})
    assert oauth_error(too_short) in ("invalid_grant", "invalid_request")
    assert "access_token" not in missing.text + as_plain.text + too_short.text


# Redirect URIs


def variants(registered: str) -> list[tuple[str, str]]:
    parts = urlsplit(registered)
    return [
        ("trailing slash", registered + "/"),
        ("upper-case path", registered.replace("/callback", "/Callback")),
        ("one character changed", registered[:-1] + "K"),
        ("one character removed", registered[:-1]),
        ("http instead of https", registered.replace("https://", "http://", 1)),
        ("extra query", registered + "?next=https://evil.example.com"),
        ("fragment", registered + "#x"),
        ("userinfo to another host", f"https://{parts.hostname}@evil.example.com{parts.path}"),
        ("sub-domain", registered.replace("://app.", "://app.example.com.evil.", 1)),
        ("port added", registered.replace(parts.netloc, f"{parts.netloc}:8443", 1)),
        ("dot segment", registered.replace("/callback", "/x/../callback")),
        ("percent-encoded", registered.replace("/callback", "/%63allback")),
    ]


async def test_redirect_uri_variants_get_a_page_never_a_redirect(tenant: LoginTenant):
    _, challenge = pkce()
    other_uri = "https://other.example.com/cb"
    other = await tenant.admin.issuer(tenant.issuer_id).clients.create(
        {"name": "Other", "type": "spa", "settings": {"redirect_uris": [other_uri]}}
    )
    await client_ready(tenant.issuer_url, other.id, other_uri)  # registered, for that client
    for label, uri in [*variants(tenant.redirect_uri), ("another client's URI", other_uri)]:
        async with PortalBrowser() as b:
            page = await b.get(
                authorize_url(tenant, tenant.spa_id, redirect_uri=uri, code_challenge=challenge,
                              code_challenge_method="S256")
            )  # fmt: skip
        assert page.status_code == 400, (label, page.status_code, page.headers.get("location"))
        assert "location" not in page.headers, label
        assert page.headers["content-type"].startswith("text/html"), label
        assert "evil.example.com" not in page.text and other_uri not in page.text, label
        assert "set-cookie" not in {k.lower() for k in page.headers}, label


async def test_token_endpoint_wants_the_identical_redirect_uri(tenant: LoginTenant, person: str):
    async with PortalBrowser() as b:
        code, verifier = await code_for(tenant, b, person, tenant.spa_id)
    for label, uri in variants(tenant.redirect_uri)[:6]:
        answer = await tenant.token(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": uri,
             "client_id": tenant.spa_id, "code_verifier": verifier}
        )  # fmt: skip
        assert oauth_error(answer) == "invalid_grant", label


# Codes and refresh tokens out of place


async def test_code_replay_after_a_refresh_revokes_the_whole_family(
    tenant: LoginTenant, person: str
):
    async with PortalBrowser() as b:
        first = await signed_in(tenant, b, person, tenant.web_id)
    rotated = await refresh(tenant, tenant.web_id, first.refresh_token)
    assert rotated.status_code == 200
    newest = rotated.json()
    assert (await tenant.introspect(newest["refresh_token"]))["active"] is True

    replay = await exchange(tenant, tenant.web_id, first.code, first.verifier)
    assert oauth_error(replay) == "invalid_grant"
    # Everything the code led to is revoked, the tokens of the refresh included (asked by the
    # confidential client itself: introspection answers only about a client's own tokens).
    for token in (first.access_token, first.refresh_token, newest["access_token"],
                  newest["refresh_token"]):  # fmt: skip
        assert (await tenant.introspect(token))["active"] is False
    assert oauth_error(await refresh(tenant, tenant.web_id, newest["refresh_token"])) == (
        "invalid_grant"
    )


async def test_another_client_of_the_issuer_cannot_use_a_code_or_refresh_token(
    tenant: LoginTenant, person: str
):
    async with PortalBrowser() as b:
        code, verifier = await code_for(tenant, b, person, tenant.spa_id)
        # The confidential client, with its own valid secret, presents the SPA's code.
        stolen = await exchange(tenant, tenant.web_id, code, verifier)
        assert oauth_error(stolen) == "invalid_grant"
        mine = await signed_in(tenant, b, person, tenant.web_id)
    # ...and the web client's refresh token at the SPA (no secret needed for a public client).
    crossed = await refresh(tenant, tenant.spa_id, mine.refresh_token)
    assert oauth_error(crossed) == "invalid_grant"
    assert "access_token" not in stolen.text + crossed.text


async def test_refresh_reuse_two_generations_back_ends_the_family(tenant: LoginTenant, person: str):
    async with PortalBrowser() as b:
        first = await signed_in(tenant, b, person, tenant.web_id)
    second = (await refresh(tenant, tenant.web_id, first.refresh_token)).json()
    third = (await refresh(tenant, tenant.web_id, second["refresh_token"])).json()
    assert len({first.refresh_token, second["refresh_token"], third["refresh_token"]}) == 3

    stale = await refresh(tenant, tenant.web_id, first.refresh_token)
    assert oauth_error(stale) == "invalid_grant"
    assert (await tenant.introspect(third["refresh_token"]))["active"] is False
    assert oauth_error(await refresh(tenant, tenant.web_id, third["refresh_token"])) == (
        "invalid_grant"
    )


async def test_one_issuers_tokens_and_flows_mean_nothing_at_another(platform, mailbox):
    a = await login_tenant(platform, name="issuer-a")
    b_tenant = await login_tenant(platform, name="issuer-b")
    try:
        email = await new_person(a)
        async with PortalBrowser() as b:
            tokens = await signed_in(a, b, email, a.spa_id)
            # A's ID token as B's logout hint, with B's own registered return URI.
            logout = await b.get(
                f"{b_tenant.issuer_url}/logout?"
                + urlencode({"id_token_hint": tokens.id_token,
                             "post_logout_redirect_uri": b_tenant.post_logout_uri})
            )  # fmt: skip
            assert logout.status_code == 400 and "location" not in logout.headers
            # A's flow at B's portal pages.
            _, challenge = pkce()
            started = await b.get(
                authorize_url(a, a.spa_id, code_challenge=challenge, code_challenge_method="S256",
                              prompt="login")
            )  # fmt: skip
            flow = query_of(started.headers["location"])["flow"]
            for path in ("login", "consent", "signup"):
                page = await b.get(f"{b_tenant.issuer_url}/{path}?flow={flow}")
                assert page.status_code in (400, 404), (path, page.status_code)
                assert "location" not in page.headers
            # A's op session cookie, carried over to B's path by hand.
            session = b.cookie("authpi_session")
            assert session is not None
        async with PortalBrowser() as thief:
            thief.http.cookies.set("authpi_session", session, path=f"/{b_tenant.issuer_id}")
            _, challenge = pkce()
            silent = await thief.get(
                authorize_url(b_tenant, b_tenant.spa_id, code_challenge=challenge,
                              code_challenge_method="S256", prompt="none", state="x1")
            )  # fmt: skip
        assert query_of(silent.headers["location"])["error"] == "login_required"
        # A's mailed reset link, pointed at B.
        async with PortalBrowser() as b:
            asked = await b.submit(f"{a.issuer_url}/password/forgot", {"email": email})
            assert asked.status_code == 200
        link = (await mailbox.wait_for(to=email, subject_contains="Reset your")).link(
            "/password/reset?token="
        )
        async with PortalBrowser() as b:
            moved = await b.get(link.replace(a.issuer_id, b_tenant.issuer_id))
            assert moved.status_code == 404 and 'id="password"' not in moved.text
            assert (await b.get(link)).status_code == 200  # still good where it belongs
        async with httpx.AsyncClient(timeout=30) as http:
            info = await http.get(
                f"{b_tenant.issuer_url}/userinfo",
                headers={"Authorization": f"Bearer {tokens.access_token}"},
            )
        assert info.status_code == 401
        assert oauth_error(await refresh(b_tenant, b_tenant.spa_id, tokens.refresh_token)) == (
            "invalid_grant"
        )
        # A's session was not touched by the refused logout at B.
        assert (await refresh(a, a.spa_id, tokens.refresh_token)).status_code == 200
    finally:
        await a.admin.close()
        await b_tenant.admin.close()


# Logout redirects


async def test_logout_never_redirects_anywhere_but_the_clients_registered_uri(
    tenant: LoginTenant, person: str
):
    scope = tenant.admin.issuer(tenant.issuer_id)
    other_logout = "https://other.example.com/bye"
    await scope.clients.create(
        {"name": "Other", "type": "spa",
         "settings": {"redirect_uris": ["https://other.example.com/cb"],
                      "post_logout_redirect_uris": [other_logout]}}
    )  # fmt: skip
    registered = tenant.post_logout_uri
    async with PortalBrowser() as b:
        tokens = await signed_in(tenant, b, person, tenant.spa_id)
        head, body, signature = tokens.id_token.split(".")
        forged = f"{head}.{body}.{signature[:-4]}AAAA"
        attempts = [
            ("another host", tokens.id_token, "https://evil.example.com/bye"),
            ("another client's URI", tokens.id_token, other_logout),
            ("suffix", tokens.id_token, registered + "x"),
            ("trailing slash", tokens.id_token, registered + "/"),
            ("extra query", tokens.id_token, registered + "?to=https://evil.example.com"),
            ("scheme-relative", tokens.id_token, "//evil.example.com/bye"),
            ("userinfo", tokens.id_token, registered.replace("://", "://evil.example.com@", 1)),
            ("javascript", tokens.id_token, "javascript:alert(1)"),
            ("forged hint", forged, registered),
            ("no hint", "", registered),
        ]
        for label, hint, uri in attempts:
            params = {"post_logout_redirect_uri": uri, "state": "s1"}
            if hint:
                params["id_token_hint"] = hint
            answer = await b.get(f"{tenant.issuer_url}/logout?{urlencode(params)}")
            assert answer.status_code == 400, (label, answer.status_code, answer.headers)
            assert "location" not in answer.headers, label
            assert "evil.example.com" not in answer.text, label
        # The right URI still works, with the state echoed.
        done = await b.get(
            f"{tenant.issuer_url}/logout?"
            + urlencode({"id_token_hint": tokens.id_token, "post_logout_redirect_uri": registered,
                         "state": "s2"})
        )  # fmt: skip
    assert done.status_code == 302 and done.headers["location"] == f"{registered}?state=s2"


# CSRF and session fixation on the portal


async def test_login_csrf_with_another_browsers_field_or_another_flows_field(
    tenant: LoginTenant, person: str
):
    _, challenge = pkce()
    url = authorize_url(tenant, tenant.spa_id, code_challenge=challenge,
                        code_challenge_method="S256")  # fmt: skip
    async with PortalBrowser() as victim, PortalBrowser() as attacker:
        victim_login = urlsplit_join(tenant, (await victim.get(url)).headers["location"])
        attacker_login = urlsplit_join(tenant, (await attacker.get(url)).headers["location"])
        _, attacker_form = await attacker.page(attacker_login)
        _, victim_form = await victim.page(victim_login)
        credentials = {"email": person, "password": PASSWORD}

        # The attacker's own field (its own cookie, its own flow) posted from the victim's
        # browser: a login CSRF that would sign the victim in as someone else.
        crossed = await victim.post(
            victim_form.action, {**credentials, "csrf": attacker_form.fields["csrf"]}
        )
        # The victim's field for another flow of the same browser.
        _, other_flow_form = await victim.page(
            urlsplit_join(tenant, (await victim.get(url)).headers["location"])
        )
        other_flow = await victim.post(
            victim_form.action, {**credentials, "csrf": other_flow_form.fields["csrf"]}
        )
        # A POST with a field but without the browser's CSRF cookie.
        async with httpx.AsyncClient(timeout=30) as cookieless:
            bare = await cookieless.post(
                victim_form.action, data={**credentials, "csrf": victim_form.fields["csrf"]}
            )
        # No field at all, from the victim's own browser (its cookie is sent).
        no_field = await victim.post(victim_form.action, credentials)
        # A GET-looking login: credentials in the query string of a POST without any body.
        query_only = await victim.post(f"{victim_form.action}&{urlencode(credentials)}", {})

        for label, refused in (("crossed", crossed), ("other flow", other_flow),
                               ("no cookie", bare), ("no field", no_field),
                               ("query only", query_only)):  # fmt: skip
            # 403 for a field that does not match; 400 when there is no form body to check
            assert refused.status_code in (400, 403), (label, refused.status_code)
            assert "Request refused" in refused.text or label == "query only", label
            assert "authpi_session" not in refused.headers.get("set-cookie", ""), label
            assert "location" not in refused.headers, label
        assert victim.cookie("authpi_session") is None

        # Nothing changed: the victim's own form still signs in and the flow goes on.
        ok = await victim.post(victim_form.action, {**victim_form.fields, **credentials})
        assert ok.status_code == 303 and "/consent?flow=" in ok.headers["location"]


async def test_consent_csrf_with_another_flows_field_decides_nothing(
    tenant: LoginTenant, person: str
):
    _, challenge = pkce()
    url = authorize_url(tenant, tenant.web_id, code_challenge=challenge,
                        code_challenge_method="S256")  # fmt: skip
    async with PortalBrowser() as b:
        first = urlsplit_join(tenant, (await b.get(url)).headers["location"])
        signed = await b.submit(first, {"email": person, "password": PASSWORD})
        consent_a = urlsplit_join(tenant, signed.headers["location"])
        second = await b.get(url)  # a second authorization: signed in, consent asked again
        consent_b = urlsplit_join(tenant, second.headers["location"])
        assert "/consent?flow=" in consent_a and "/consent?flow=" in consent_b
        assert consent_a != consent_b
        _, form_a = await b.page(consent_a)
        _, form_b = await b.page(consent_b)
        crossed = await b.post(form_a.action, {"decision": "allow", "csrf": form_b.fields["csrf"]})
        assert crossed.status_code == 403 and "location" not in crossed.headers
        allowed = await b.post(form_a.action, {"decision": "allow", **form_a.fields})
    assert allowed.status_code == 303
    assert allowed.headers["location"].startswith(f"{tenant.redirect_uri}?code=")


async def test_a_planted_session_cookie_is_not_adopted_at_login(tenant: LoginTenant, person: str):
    _, challenge = pkce()
    url = authorize_url(tenant, tenant.spa_id, code_challenge=challenge,
                        code_challenge_method="S256")  # fmt: skip
    planted = "s_" + secrets.token_hex(12) + "." + secrets.token_urlsafe(24)
    async with PortalBrowser() as b:
        b.http.cookies.set("authpi_session", planted, path=f"/{tenant.issuer_id}")
        started = await b.get(url)
        assert "/login?flow=" in started.headers["location"]  # the planted value is nobody
        login = urlsplit_join(tenant, started.headers["location"])
        signed = await b.submit(login, {"email": person, "password": PASSWORD})
        assert signed.status_code == 303
        issued = signed.headers["set-cookie"]
        assert "authpi_session=" in issued and planted not in issued


def urlsplit_join(t: LoginTenant, location: str) -> str:
    """A Location the IdP sent, made absolute."""
    if location.startswith("http"):
        return location
    parts = urlsplit(t.issuer_url)
    return f"{parts.scheme}://{parts.netloc}{location}"


# Markup in names and branding


async def branded(platform: Any) -> LoginTenant:
    """An issuer whose name, branding and client name all carry markup."""
    settings = {
        "access": {"mode": "open"},
        "branding": {
            "display_name": EVIL,
            "logo_url": 'https://cdn.example.com/logo.png" onerror="alert(3)',
            "primary_color": "red;}</style><script>alert(4)</script>",
        },
    }
    t = await login_tenant(platform, name=EVIL, settings=settings, client_name=EVIL)

    async def shows_branding() -> bool:
        async with httpx.AsyncClient(timeout=30) as http:
            page = await http.get(f"{t.issuer_url}/login")
        return "alert(1)" in page.text  # the display name, escaped, is in use

    await eventually(shows_branding)
    return t


async def test_markup_in_names_and_branding_stays_text_on_every_page(platform, mailbox):
    t = await branded(platform)
    try:
        email = new_email("markup")
        pages: dict[str, httpx.Response] = {}
        async with PortalBrowser() as b:
            for path in ("login", "signup", "password/forgot", "login-link", "signed-out", "error"):
                pages[path] = await b.get(f"{t.issuer_url}/{path}")
            # The person's own name is markup too; a failed sign-up shows it back in the form.
            short = await b.submit(
                f"{t.issuer_url}/signup", {"email": email, "password": "short", "name": EVIL}
            )
            assert short.status_code == 400
            pages["signup refused"] = short
            assert form_of(short.text, str(short.url)).fields["name"] == EVIL
            created = await b.sign_up(t.issuer_url, email, PASSWORD, name=EVIL)
            assert created.status_code == 303, created.text
            pages["signed in"] = await b.get(f"{t.issuer_url}/login")
            wrong = await b.submit(f"{t.issuer_url}/password/forgot", {"email": EVIL})
            pages["forgot refused"] = wrong
        async with PortalBrowser() as b:
            verifier, challenge = pkce()
            started = await b.get(
                authorize_url(t, t.spa_id, code_challenge=challenge, code_challenge_method="S256")
            )
            login = urlsplit_join(t, started.headers["location"])
            pages["login in a flow"] = await b.get(login)
            failed = await b.submit(login, {"email": email, "password": "not the password"})
            assert failed.status_code == 401
            pages["login failed"] = failed
            signed = await b.submit(login, {"email": email, "password": PASSWORD})
            consent = urlsplit_join(t, signed.headers["location"])
            pages["consent"] = await b.get(consent)
            callback = await b.submit(consent, {}, button="allow")
            code = query_of(callback.headers["location"])["code"]
        for label, page in pages.items():
            assert page.headers["content-type"].startswith("text/html"), label
            assert_inert(page.text)
            assert "default-src 'none'" in page.headers["content-security-policy"], label
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["consent"].text  # client name
        assert "cdn.example.com" not in pages["login"].text  # the logo URL was refused

        # Where the name is data, not markup, it comes back exactly as typed.
        tokens = await t.token(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": t.redirect_uri,
             "client_id": t.spa_id, "code_verifier": verifier}
        )  # fmt: skip
        assert tokens.status_code == 200, tokens.text
        async with httpx.AsyncClient(timeout=30) as http:
            info = await http.get(
                f"{t.issuer_url}/userinfo",
                headers={"Authorization": f"Bearer {tokens.json()['access_token']}"},
            )
        assert info.headers["content-type"].startswith("application/json")
        assert info.json()["name"] == EVIL
        mail = await mailbox.wait_for(to=email, subject_contains="Verify your email")
        assert mail.html is None  # plain-text mail only: the brand name as written, inert
    finally:
        await t.admin.close()


def browser_state(d: WebDriver) -> dict[str, Any]:
    return {
        "alert": alert_open(d),
        "injected": len(d.find_elements(By.ID, "injected")),
        "scripts": d.execute_script("return document.scripts.length"),
        "images": [i.get_attribute("src") for i in d.find_elements(By.TAG_NAME, "img")],
        "title": d.title,
        "brand": d.find_element(By.CSS_SELECTOR, ".brand .name").text,
    }


async def test_markup_in_names_and_branding_is_inert_in_chromium(platform, browser):
    t = await branded(platform)
    try:
        email = new_email("markup")
        _, challenge = pkce()
        url = authorize_url(t, t.spa_id, code_challenge=challenge, code_challenge_method="S256")
        await browser.get(url)
        seen = [await browser.run(browser_state)]
        await browser.screenshot("branded-login")

        await browser.run(click("signup"))
        await browser.run(fill({"name": EVIL, "email": email, "password": "short"}))
        seen.append(await browser.run(browser_state))
        shown = await browser.run(lambda d: d.find_element(By.ID, "name").get_attribute("value"))
        assert shown == EVIL  # the person's name, given back as the text it is
        await browser.screenshot("branded-signup-refused")

        await browser.run(fill({"password": PASSWORD}))
        assert "/consent" in await browser.run(lambda d: d.current_url)
        seen.append(await browser.run(browser_state))
        client_name = await browser.run(
            lambda d: d.find_element(By.CSS_SELECTOR, "p.lead strong").text
        )
        assert client_name == EVIL
        await browser.screenshot("branded-consent")
        for state in seen:
            assert state["alert"] is False and state["injected"] == 0 and state["scripts"] == 0
            assert state["images"] == []  # the logo URL with a quote in it was dropped
            assert state["brand"] == EVIL and EVIL in state["title"]
    finally:
        await t.admin.close()


# Host headers


SPOOFED = {
    "Host": "evil.example.com",
    "X-Forwarded-Host": "evil.example.com",
    "X-Forwarded-Proto": "https",
    "Forwarded": "host=evil.example.com;proto=https",
}


async def test_mailed_links_and_issuer_urls_ignore_spoofed_host_headers(
    tenant: LoginTenant, mailbox
):
    t = tenant
    email = new_email("host")
    async with PortalBrowser() as b:
        b.http.headers.update(SPOOFED)
        created = await b.sign_up(t.issuer_url, email, PASSWORD)
        assert created.status_code == 303
        assert created.headers["location"].startswith((t.issuer_url, f"/{t.issuer_id}/"))
        reset = await b.submit(f"{t.issuer_url}/password/forgot", {"email": email})
        link = await b.submit(f"{t.issuer_url}/login-link", {"email": email})
        assert reset.status_code == link.status_code == 200
        _, challenge = pkce()
        started = await b.get(
            authorize_url(t, t.spa_id, code_challenge=challenge, code_challenge_method="S256",
                          prompt="login")
        )  # fmt: skip
        assert started.headers["location"].startswith((t.issuer_url, f"/{t.issuer_id}/"))
        discovery = (await b.get(f"{t.issuer_url}/.well-known/openid-configuration")).json()
    assert discovery["issuer"] == t.issuer_url
    assert "evil" not in str(discovery)
    for subject in ("Verify your email", "Reset your", "sign-in link"):
        mail = await mailbox.wait_for(to=email, subject_contains=subject)
        assert mail.links() and all(u.startswith(f"{t.issuer_url}/") for u in mail.links()), (
            subject,
            mail.links(),
        )


async def test_markup_in_request_parameters_is_not_reflected(tenant: LoginTenant):
    t = tenant
    _, challenge = pkce()
    async with PortalBrowser() as b:
        unknown_client = await b.get(
            f"{t.issuer_url}/authorize?"
            + urlencode({"response_type": "code", "client_id": EVIL, "redirect_uri": EVIL,
                         "scope": EVIL, "state": EVIL})
        )  # fmt: skip
        bad_redirect = await b.get(
            authorize_url(t, t.spa_id, redirect_uri=f"https://x.example.com/{EVIL}",
                          state=EVIL, code_challenge=challenge, code_challenge_method="S256")
        )  # fmt: skip
        portal = [
            await b.get(f"{t.issuer_url}/login?flow={EVIL}"),
            await b.get(f"{t.issuer_url}/password/reset?token={EVIL}"),
            await b.get(f"{t.issuer_url}/verify-email?token={EVIL}"),
            await b.get(f"{t.issuer_url}/login-link/callback?token={EVIL}"),
        ]
        # Where the request is valid enough to go back to the client, the state travels in the
        # redirect's query, encoded.
        redirected = await b.get(authorize_url(t, t.spa_id, state=EVIL))
        # A login hint is shown back in the sign-in form.
        hinted = await b.get(
            authorize_url(t, t.spa_id, login_hint=EVIL, code_challenge=challenge,
                          code_challenge_method="S256")
        )  # fmt: skip
        login = await b.get(urlsplit_join(t, hinted.headers["location"]))
    assert login.status_code == 200
    assert_inert(login.text)
    assert form_of(login.text, str(login.url)).fields["email"] == EVIL
    for page in (unknown_client, bad_redirect, *portal):
        assert page.status_code >= 400 and "location" not in page.headers
        assert page.headers["content-type"].startswith("text/html")
        assert_inert(page.text)
    assert redirected.status_code == 302
    location = redirected.headers["location"]
    assert location.startswith(f"{t.redirect_uri}?") and query_of(location)["state"] == EVIL
    assert "<" not in location and '"' not in location


# A user suspended while signed in


async def test_a_suspended_user_is_out_everywhere_at_once(tenant: LoginTenant, person: str):
    t = tenant
    [user] = (await t.admin.issuer(t.issuer_id).users.list()).data
    async with PortalBrowser() as b:
        tokens = await signed_in(t, b, person, t.web_id)
        await t.admin.issuer(t.issuer_id).users.update(user.user_id, {"status": "suspended"})

        async def known_suspended() -> bool:
            return (await t.introspect(tokens.access_token))["active"] is False

        await eventually(known_suspended)
        assert (await t.introspect(tokens.refresh_token))["active"] is False
        assert oauth_error(await refresh(t, t.web_id, tokens.refresh_token)) == "invalid_grant"
        async with httpx.AsyncClient(timeout=30) as http:
            info = await http.get(
                f"{t.issuer_url}/userinfo",
                headers={"Authorization": f"Bearer {tokens.access_token}"},
            )
        assert info.status_code == 401
        # The browser's session does not sign the suspended user in to anything.
        _, challenge = pkce()
        again = await b.get(
            authorize_url(t, t.web_id, code_challenge=challenge, code_challenge_method="S256")
        )
        assert again.status_code in (302, 400, 403)
        assert "code" not in query_of(again.headers.get("location", "")), again.headers
        quiet = await b.get(
            authorize_url(t, t.web_id, code_challenge=challenge, code_challenge_method="S256",
                          prompt="none")
        )  # fmt: skip
        assert "code" not in query_of(quiet.headers.get("location", "")), quiet.headers
    async with PortalBrowser() as b:
        page = await b.submit(f"{t.issuer_url}/login", {"email": person, "password": PASSWORD})
        assert page.status_code == 403 and "authpi_session" not in page.headers.get(
            "set-cookie", ""
        )


async def test_logout_by_form_post_checks_the_same(tenant: LoginTenant, person: str):
    t = tenant
    async with PortalBrowser() as b:
        tokens = await signed_in(t, b, person, t.spa_id)
        evil = await b.post(
            f"{t.issuer_url}/logout",
            {
                "id_token_hint": tokens.id_token,
                "post_logout_redirect_uri": "https://evil.example.com/",
            },
        )
        assert evil.status_code == 400 and "location" not in evil.headers
        done = await b.post(
            f"{t.issuer_url}/logout",
            {"id_token_hint": tokens.id_token, "post_logout_redirect_uri": t.post_logout_uri,
             "state": "posted"},
        )  # fmt: skip
    assert done.status_code in (302, 303)
    assert done.headers["location"] == f"{t.post_logout_uri}?state=posted"
    assert oauth_error(await refresh(t, t.spa_id, tokens.refresh_token)) == "invalid_grant"


# Racing sign-ups


async def test_racing_sign_ups_for_one_address_make_one_account_with_one_password(
    tenant: LoginTenant,
):
    t = tenant
    email = new_email("race")

    async def sign_up(i: int) -> tuple[str, int]:
        password = f"racing password number {i}"
        async with PortalBrowser() as b:
            address = email if i % 2 == 0 else email.upper()
            answer = await b.sign_up(t.issuer_url, address, password)
        return password, answer.status_code

    results = await asyncio.gather(*(sign_up(i) for i in range(6)))
    # the losers get the answer any sign-up gets that does not sign in (nothing tells them the
    # address is taken); the winner is signed in
    assert sorted(status for _, status in results) == [200] * 5 + [303], results
    assert len((await t.admin.issuer(t.issuer_id).users.list()).data) == 1
    [winner] = [password for password, status in results if status == 303]
    losers = [password for password, status in results if status != 303]
    async with PortalBrowser() as b:
        ok = await b.submit(f"{t.issuer_url}/login", {"email": email, "password": winner})
        assert ok.status_code == 303  # the account's password is the winner's...
    for password in losers:  # ...and no refused sign-up changed it
        async with PortalBrowser() as b:
            form = {"email": email, "password": password}
            refused = await b.submit(f"{t.issuer_url}/login", form)
        assert refused.status_code == 401


# Silent authorizations


async def test_a_silent_authorization_never_grants_consent_or_skips_max_age(
    tenant: LoginTenant, person: str
):
    t = tenant
    async with PortalBrowser() as b:
        await signed_in(t, b, person, t.spa_id)  # signed in, consented to the SPA only
        _, challenge = pkce()
        pkce_params = {"code_challenge": challenge, "code_challenge_method": "S256"}
        # The web client was never allowed: prompt=none must not answer with a code.
        silent = await b.get(authorize_url(t, t.web_id, prompt="none", state="q1", **pkce_params))
        got = query_of(silent.headers["location"])
        assert silent.headers["location"].startswith(f"{t.redirect_uri}?")
        assert (got.get("error"), got.get("state")) in (
            ("consent_required", "q1"), ("interaction_required", "q1")
        ), got  # fmt: skip
        assert "code" not in got
        # max_age=0 wants a fresh sign-in: the login page, not a code from the old session.
        fresh = await b.get(authorize_url(t, t.spa_id, max_age="0", **pkce_params))
        assert "/login?flow=" in fresh.headers["location"], fresh.headers["location"]
        # ...and with prompt=none it cannot be had silently.
        quiet = await b.get(
            authorize_url(t, t.spa_id, max_age="0", prompt="none", state="q2", **pkce_params)
        )
        assert query_of(quiet.headers["location"]).get("error") == "login_required"
        # The consented client still signs in silently.
        ok = await b.get(authorize_url(t, t.spa_id, prompt="none", **pkce_params))
        assert "code" in query_of(ok.headers["location"]), ok.headers["location"]
