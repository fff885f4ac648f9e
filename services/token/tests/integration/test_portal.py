"""The hosted login portal over real HTTP on the IdP port (idp-api.md 1.5, 10.3, 12.6): CSRF
refusals that change nothing, the 5-failure lockout (and not before), escaping of hostile names
and branding, the issuer's signup policies, email verification, password reset and login links,
each link good once. Issuers are created through the Core API; mail is read from the platform's
development mail sink over HTTP, as a person would read their inbox."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from authpi_admin import AuthPIAdmin

from authpi.contracts.base import Meta
from authpi.crypto.envelope import seal, unseal
from authpi.crypto.passwords import Passwords
from authpi.eventstore.store import EventStore
from authpi.platform.testing.mail import Mailbox
from authpi.testing.plugin import eventually
from authpi.token.domain.credential_commands import SetPassword
from authpi.token.handlers.credentials import Credentials
from authpi.token.projections.credentials import CredentialsView
from authpi.token.queries.portal import PortalQueries

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
EVIL = '<script>alert("x")</script>'


class Browser:
    """One person's browser: its own cookie jar, no automatic redirects."""

    def __init__(self, platform: Any, issuer_id: str) -> None:
        self.base = f"{platform.idp_url}/{issuer_id}"
        self.http = httpx.AsyncClient(timeout=30, follow_redirects=False)

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def get(self, path: str, **params: str) -> httpx.Response:
        url = path if path.startswith("http") else f"{self.base}{path}"
        return await self.http.get(url, params=params or None)

    async def submit(
        self,
        path: str,
        data: dict[str, str],
        csrf: str | None = "page",
        csrf_from: str | None = None,
        **params: str,
    ) -> httpx.Response:
        """POST a form the way the page would: with the csrf field of the page just loaded
        (`csrf="page"`; of page `csrf_from` when the page itself shows no form), a given value,
        or none at all (None)."""
        url = path if path.startswith("http") else f"{self.base}{path}"
        if csrf == "page":
            source = f"{self.base}{csrf_from}" if csrf_from else url
            page = await self.http.get(source, params=params or None)
            found = _CSRF.search(page.text)
            assert found, page.text
            csrf = found.group(1)
        body = dict(data) if csrf is None else {**data, "csrf": csrf}
        return await self.http.post(url, params=params or None, data=body)


def email() -> str:
    return f"user-{secrets.token_hex(5)}@example.com"


async def portal_issuer(
    platform: Any, issuer_with_keys: Any, admin_of: Any, settings: dict[str, Any] | None = None
) -> tuple[AuthPIAdmin, str]:
    admin, issuer_id = await issuer_with_keys(platform, "portal")
    if settings is not None:
        await admin.issuers.update(issuer_id, {"settings": settings})

        async def applied() -> bool:
            async with Browser(platform, issuer_id) as b:
                page = await b.get("/signup")
            mode = settings.get("access", {}).get("mode", "open")
            return (page.status_code == 403) == (mode not in ("open", "approval"))

        await eventually(applied)
    return admin, issuer_id


async def sign_up(
    b: Browser, address: str, password: str = PASSWORD, csrf_from: str | None = None
) -> httpx.Response:
    form = {"email": address, "password": password, "name": "Ada"}
    return await b.submit("/signup", form, csrf_from=csrf_from)


async def users_of(admin: AuthPIAdmin, issuer_id: str) -> list[Any]:
    page = await admin.issuer(issuer_id).users.list()
    return list(page.data)


@pytest.fixture
async def tenant(platform, issuer_with_keys, admin_of):
    return await portal_issuer(platform, issuer_with_keys, admin_of)


async def test_signup_without_or_with_a_wrong_csrf_changes_nothing(platform, tenant):
    admin, issuer_id = tenant
    address = email()
    async with Browser(platform, issuer_id) as b:
        await b.get("/signup")  # the browser holds its CSRF cookie
        form = {"email": address, "password": PASSWORD, "name": "Ada"}
        missing = await b.submit("/signup", form, csrf=None)
        wrong = await b.submit("/signup", form, csrf="AAAA" + "A" * 40)
    async with Browser(platform, issuer_id) as other:  # a field made for another browser
        foreign = await other.submit("/login", {"email": address, "password": PASSWORD})
    assert (missing.status_code, wrong.status_code) == (403, 403)
    assert "Request refused" in missing.text
    assert foreign.status_code == 401  # no such user: the signup never happened
    assert await users_of(admin, issuer_id) == []


async def test_signed_out_and_refused_pages_lead_somewhere(platform, tenant):
    _, issuer_id = tenant
    async with Browser(platform, issuer_id) as b:
        signed_out = await b.get("/signed-out")
        await b.get("/login")
        refused = await b.submit("/login", {"email": "a@example.com", "password": "x"}, csrf=None)
    assert signed_out.status_code == 200
    assert f'href="/{issuer_id}/login" id="continue"' in signed_out.text
    assert refused.status_code == 403 and "Nothing was changed" in refused.text
    assert f'href="/{issuer_id}/login" id="continue">Try again' in refused.text


async def test_login_without_csrf_is_refused_before_any_check(platform, tenant):
    _, issuer_id = tenant
    address = email()
    async with Browser(platform, issuer_id) as b:
        assert (await sign_up(b, address)).status_code == 303
    async with Browser(platform, issuer_id) as b:
        await b.get("/login")
        refused = await b.submit("/login", {"email": address, "password": PASSWORD}, csrf=None)
        assert refused.status_code == 403
        assert "authpi_session" not in refused.headers.get("set-cookie", "")
        ok = await b.submit("/login", {"email": address, "password": PASSWORD})
    assert ok.status_code == 303 and "authpi_session=" in ok.headers["set-cookie"]


async def test_signup_signs_in_and_mails_a_verification_link_good_once(
    platform, tenant, mailbox: Mailbox
):
    admin, issuer_id = tenant
    address = email()
    async with Browser(platform, issuer_id) as b:
        created = await sign_up(b, address)
        assert created.status_code == 303
        cookie = created.headers["set-cookie"]
        assert "authpi_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert f"Path=/{issuer_id}" in cookie
        mail = await mailbox.wait_for(to=address, subject_contains="Verify your email")
        link = mail.link("/verify-email?token=")
        first = await b.get(link)
        again = await b.get(link)
    assert first.status_code == 200 and "Email verified" in first.text
    assert again.status_code == 410 and "already been used" in again.text
    assert [u.status for u in await users_of(admin, issuer_id)] == ["active"]


async def test_duplicate_signup_creates_nothing_and_tells_the_owner(
    platform, tenant, mailbox: Mailbox
):
    admin, issuer_id = tenant
    address = email()
    async with Browser(platform, issuer_id) as b:
        assert (await sign_up(b, address)).status_code == 303
    async with Browser(platform, issuer_id) as b:
        again = await sign_up(b, address.upper(), "another password entirely")
    assert again.status_code == 200 and "Check your email" in again.text
    assert "already" not in again.text and "authpi_session" not in again.headers.get(
        "set-cookie", ""
    )
    mail = await mailbox.wait_for(to=address, subject_contains="tried to sign up")
    assert f"/{issuer_id}/login" in mail.text and f"/{issuer_id}/password/forgot" in mail.text
    assert len(await users_of(admin, issuer_id)) == 1
    async with Browser(platform, issuer_id) as b:  # the owner's password is untouched
        taken = await b.submit(
            "/login", {"email": address, "password": "another password entirely"}
        )
        kept = await b.submit("/login", {"email": address, "password": PASSWORD})
    assert kept.status_code == 303 and taken.status_code == 401


async def test_a_taken_address_answers_like_a_new_one_when_verification_is_required(
    platform, issuer_with_keys, admin_of, mailbox: Mailbox
):
    settings = {"access": {"mode": "open", "require_verified_email": True}}
    admin, issuer_id = await portal_issuer(platform, issuer_with_keys, admin_of, settings)
    taken, new = email(), email()
    async with Browser(platform, issuer_id) as b:
        await sign_up(b, taken)
    async with Browser(platform, issuer_id) as b:
        for_taken = await sign_up(b, taken)
        for_new = await sign_up(b, new)
    assert for_taken.status_code == for_new.status_code == 200
    assert _same_page(for_taken.text, taken) == _same_page(for_new.text, new)
    assert set(for_taken.headers.keys()) == set(for_new.headers.keys())
    await mailbox.wait_for(to=taken, subject_contains="tried to sign up")
    await mailbox.wait_for(to=new, subject_contains="Verify your email")
    assert len(await users_of(admin, issuer_id)) == 2


async def test_weak_password_is_refused(platform, tenant):
    admin, issuer_id = tenant
    async with Browser(platform, issuer_id) as b:
        short = await sign_up(b, email(), "short")
        long = await sign_up(b, email(), "x" * 1025)
    assert (short.status_code, long.status_code) == (400, 400)
    assert "at least 8 characters" in short.text
    assert await users_of(admin, issuer_id) == []


async def test_four_failures_do_not_lock_the_credential(platform, tenant):
    _, issuer_id = tenant
    address = email()
    async with Browser(platform, issuer_id) as b:
        await sign_up(b, address)
    async with Browser(platform, issuer_id) as b:
        for _ in range(4):
            failed = await b.submit("/login", {"email": address, "password": "wrong-password"})
            assert failed.status_code == 401 and "incorrect" in failed.text
        ok = await b.submit("/login", {"email": address, "password": PASSWORD})
    assert ok.status_code == 303


async def test_five_failures_lock_the_credential_for_every_browser(platform, tenant):
    _, issuer_id = tenant
    address = email()
    async with Browser(platform, issuer_id) as b:
        await sign_up(b, address)
    async with Browser(platform, issuer_id) as b:
        answers = [
            await b.submit("/login", {"email": address, "password": f"wrong-{i}"}) for i in range(5)
        ]
    assert [a.status_code for a in answers] == [401] * 5
    assert "locked" in answers[-1].text
    async with Browser(platform, issuer_id) as other:
        right = await other.submit("/login", {"email": address.upper(), "password": PASSWORD})
    assert right.status_code == 403
    assert "locked for 15 minutes" in right.text
    assert "authpi_session" not in right.headers.get("set-cookie", "")


async def test_unknown_usernames_lock_the_same_way(platform, tenant):
    _, issuer_id = tenant
    address = email()
    async with Browser(platform, issuer_id) as b:
        answers = [
            await b.submit("/login", {"email": address, "password": "whatever-1"}) for _ in range(6)
        ]
    assert [a.status_code for a in answers] == [401] * 5 + [403]
    assert "incorrect" in answers[0].text and "locked" in answers[5].text


async def test_script_in_branding_and_input_is_escaped(platform, issuer_with_keys, admin_of):
    settings = {
        "access": {"mode": "open"},
        "branding": {
            "display_name": EVIL,
            "logo_url": "javascript:alert(1)",
            "primary_color": "red;}</style><script>alert(1)</script>",
        },
    }
    _, issuer_id = await portal_issuer(platform, issuer_with_keys, admin_of, settings)
    async with Browser(platform, issuer_id) as b:
        page = await b.get("/login")
        echoed = await b.submit("/login", {"email": EVIL, "password": "x"})
        signup = await b.submit(
            "/signup", {"email": "x@example.com", "password": "p", "name": EVIL}
        )
    for response in (page, echoed, signup):
        assert "<script>" not in response.text
        assert "javascript:" not in response.text
        assert "&lt;script&gt;" in response.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("mode", ["invite_only", "closed"])
async def test_signup_policies_refuse_with_a_clear_page(platform, issuer_with_keys, admin_of, mode):
    settings = {"access": {"mode": mode}}
    admin, issuer_id = await portal_issuer(platform, issuer_with_keys, admin_of, settings)
    async with Browser(platform, issuer_id) as b:
        page = await b.get("/signup")
        posted = await sign_up(
            b, email(), csrf_from="/password/forgot"
        )  # the refusal shows no form
        login = await b.get("/login")
    assert page.status_code == 403 and posted.status_code == 403
    assert ("invitation" if mode == "invite_only" else "Contact an administrator") in page.text
    assert 'id="password"' not in page.text
    assert 'id="signup"' not in login.text  # the sign-in page offers no sign-up
    assert await users_of(admin, issuer_id) == []


async def test_allowed_domains_limit_signup(platform, issuer_with_keys, admin_of):
    settings = {"access": {"mode": "open", "allowed_domains": ["example.com"]}}
    admin, issuer_id = await portal_issuer(platform, issuer_with_keys, admin_of, settings)
    async with Browser(platform, issuer_id) as b:
        refused = await sign_up(b, f"user-{secrets.token_hex(4)}@other.test")
        allowed = await sign_up(b, email())
    assert refused.status_code == 403 and "approved domains" in refused.text
    assert allowed.status_code == 303
    assert len(await users_of(admin, issuer_id)) == 1


async def test_password_reset_changes_the_password_once(platform, tenant, mailbox: Mailbox):
    _, issuer_id = tenant
    address = email()
    new_password = "a brand new passphrase"
    async with Browser(platform, issuer_id) as b:
        await sign_up(b, address)
        assert "You are signed in" in (await b.get("/login")).text
        asked = await b.submit("/password/forgot", {"email": address})
        unknown = await b.submit("/password/forgot", {"email": email()})
        assert asked.status_code == unknown.status_code == 200
        assert "If an account exists" in asked.text and "If an account exists" in unknown.text
        mail = await mailbox.wait_for(to=address, subject_contains="Reset your")
        link = mail.link("/password/reset?token=")
        form = await b.get(link)
        assert form.status_code == 200 and 'id="password"' in form.text
        token = link.split("token=", 1)[1]
        done = await b.submit(link, {"token": token, "password": new_password})
        assert done.status_code == 200 and "Password changed" in done.text
        reused = await b.submit(
            "/password/reset", {"token": token, "password": "x" * 12}, csrf_from="/password/forgot"
        )
        assert reused.status_code == 410
        # the reset signed this browser (and any other) out
        assert 'id="password"' in (await b.get("/login")).text
    async with Browser(platform, issuer_id) as b:
        old = await b.submit("/login", {"email": address, "password": PASSWORD})
        new = await b.submit("/login", {"email": address, "password": new_password})
    assert old.status_code == 401
    assert new.status_code == 303


async def test_login_link_signs_in_once(platform, tenant, mailbox: Mailbox):
    _, issuer_id = tenant
    address = email()
    async with Browser(platform, issuer_id) as b:
        await sign_up(b, address)
    async with Browser(platform, issuer_id) as b:
        asked = await b.submit("/login-link", {"email": address})
        assert asked.status_code == 200 and "If an account exists" in asked.text
        mail = await mailbox.wait_for(to=address, subject_contains="sign-in link")
        link = mail.link("/login-link/callback?token=")
        token = link.split("token=", 1)[1]
        async with Browser(platform, issuer_id) as scanner:  # a mail scanner prefetches it
            prefetched = [await scanner.get(link), await scanner.get(link)]
        assert [p.status_code for p in prefetched] == [200, 200]
        assert all("authpi_session" not in p.headers.get("set-cookie", "") for p in prefetched)
        confirm = await b.get(link)
        assert confirm.status_code == 200
        assert f'Continue as <span class="address">{address}</span>' in confirm.text
        assert "authpi_session" not in confirm.headers.get("set-cookie", "")
        without_csrf = await b.submit(link, {"token": token}, csrf=None)
        assert without_csrf.status_code == 403
        first = await b.submit(link, {"token": token})
        again = await b.submit(link, {"token": token}, csrf_from="/password/forgot")
        shown_again = await b.get(link)
    assert first.status_code == 303 and "authpi_session=" in first.headers["set-cookie"]
    assert again.status_code == 410 and "already been used" in again.text
    assert shown_again.status_code == 410 and "already been used" in shown_again.text


async def test_reset_link_survives_a_prefetch(platform, tenant, mailbox: Mailbox):
    _, issuer_id = tenant
    address = email()
    async with Browser(platform, issuer_id) as b:
        await sign_up(b, address)
    async with Browser(platform, issuer_id) as b:
        await b.submit("/password/forgot", {"email": address})
        link = (await mailbox.wait_for(to=address, subject_contains="Reset your")).link(
            "/password/reset?token="
        )
        async with Browser(platform, issuer_id) as scanner:
            for _ in range(2):
                assert (await scanner.get(link)).status_code == 200
        token = link.split("token=", 1)[1]
        done = await b.submit(link, {"token": token, "password": "a brand new passphrase"})
    assert done.status_code == 200 and "Password changed" in done.text


def _same_page(text: str, address: str) -> str:
    """A page with what legitimately differs between two answers taken out: the address the
    person typed (echoed in the form) and the per-response CSP nonce."""
    return re.sub(r'nonce="[^"]+"', 'nonce=""', text.replace(address, "ADDRESS"))


@pytest.mark.parametrize("path", ["/password/forgot", "/login-link"])
async def test_mail_forms_answer_the_same_for_known_and_unknown_addresses(
    platform, tenant, mailbox: Mailbox, path
):
    _, issuer_id = tenant
    known, unknown = email(), email()
    async with Browser(platform, issuer_id) as b:
        await sign_up(b, known)
    async with Browser(platform, issuer_id) as b:
        for_known = await b.submit(path, {"email": known})
        for_unknown = await b.submit(path, {"email": unknown})
    assert for_known.status_code == for_unknown.status_code == 200
    assert _same_page(for_known.text, known) == _same_page(for_unknown.text, unknown)
    assert set(for_known.headers.keys()) == set(for_unknown.headers.keys())
    assert for_known.headers.get("set-cookie") == for_unknown.headers.get("set-cookie")
    # the known address gets its mail after the answer; the unknown one gets nothing
    await mailbox.wait_for(to=known, subject_contains="Reset" if "forgot" in path else "sign-in")
    assert await mailbox.messages(unknown) == []


async def authorization(platform, admin: AuthPIAdmin, issuer_id: str) -> tuple[str, str]:
    """A web client of the issuer, once the token service knows it: (client id, redirect URI)."""
    redirect_uri = "https://app.example.com/callback"
    client = await admin.issuer(issuer_id).clients.create(
        {
            "name": "Acme <b>Dashboard</b>",
            "type": "web",
            "settings": {
                "redirect_uris": [redirect_uri],
                "grant_types": ["authorization_code", "refresh_token"],
                "scopes": ["openid", "profile", "email"],
            },
        }
    )

    async def known() -> bool:
        async with Browser(platform, issuer_id) as b:
            return (await start(b, client.id, redirect_uri)).status_code == 302

    await eventually(known)
    return client.id, redirect_uri


async def start(b: Browser, client_id: str, redirect_uri: str) -> httpx.Response:
    return await b.get(
        "/authorize", response_type="code", client_id=client_id, redirect_uri=redirect_uri,
        scope="openid email", state="st-1",
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        code_challenge_method="S256",
    )  # fmt: skip


async def test_authorization_goes_through_login_and_consent(platform, tenant):
    admin, issuer_id = tenant
    client_id, redirect_uri = await authorization(platform, admin, issuer_id)
    address = email()
    async with Browser(platform, issuer_id) as b:
        await sign_up(b, address)
    async with Browser(platform, issuer_id) as b:
        to_login = await start(b, client_id, redirect_uri)
        login_url = to_login.headers["location"]
        assert "/login?flow=" in login_url
        page = await b.get(login_url)
        assert "Acme &lt;b&gt;Dashboard&lt;/b&gt;" in page.text and "<b>" not in page.text
        signed_in = await b.submit(login_url, {"email": address, "password": PASSWORD})
        assert signed_in.status_code == 303
        consent_url = signed_in.headers["location"]
        assert "/consent?flow=" in consent_url
        async with Browser(platform, issuer_id) as stranger:  # no session: sign in first
            elsewhere = await stranger.get(consent_url)
        assert elsewhere.status_code == 302 and "/login?flow=" in elsewhere.headers["location"]
        consent = await b.get(consent_url)
        assert 'id="allow"' in consent.text and 'id="deny"' in consent.text
        assert "email" in consent.text
        replay = await b.submit(consent_url, {"decision": "allow"}, csrf=None)
        assert replay.status_code == 403  # no CSRF field: nothing decided
        allowed = await b.submit(consent_url, {"decision": "allow"})
        assert allowed.status_code == 303
        back = allowed.headers["location"]
        assert back.startswith(f"{redirect_uri}?code=") and "state=st-1" in back
        assert "session_state=" in back
        again = await start(b, client_id, redirect_uri)  # consent remembered, session reused
    assert again.status_code == 302 and again.headers["location"].startswith(redirect_uri)
    assert "code=" in again.headers["location"]


async def test_denied_consent_returns_access_denied(platform, tenant):
    admin, issuer_id = tenant
    client_id, redirect_uri = await authorization(platform, admin, issuer_id)
    address = email()
    async with Browser(platform, issuer_id) as b:
        await sign_up(b, address)
    async with Browser(platform, issuer_id) as b:
        login_url = (await start(b, client_id, redirect_uri)).headers["location"]
        signed_in = await b.submit(login_url, {"email": address, "password": PASSWORD})
        denied = await b.submit(signed_in.headers["location"], {"decision": "deny"})
    assert denied.status_code == 303
    assert denied.headers["location"].startswith(f"{redirect_uri}?error=access_denied")


async def test_signup_inside_an_authorization_continues_it(platform, tenant, mailbox: Mailbox):
    admin, issuer_id = tenant
    client_id, redirect_uri = await authorization(platform, admin, issuer_id)
    address = email()
    async with Browser(platform, issuer_id) as b:
        login_url = (await start(b, client_id, redirect_uri)).headers["location"]
        flow_id = login_url.split("flow=", 1)[1]
        login = await b.get(login_url)
        assert f'href="/{issuer_id}/signup?flow={flow_id}"' in login.text
        created = await b.submit("/signup", {"email": address, "password": PASSWORD}, flow=flow_id)
        assert created.status_code == 303
        assert f"/consent?flow={flow_id}" in created.headers["location"]
    await mailbox.wait_for(to=address, subject_contains="Verify your email")


async def test_requested_mail_stops_after_five_in_fifteen_minutes(
    platform, tenant, mailbox: Mailbox
):
    _, issuer_id = tenant
    address = email()
    async with Browser(platform, issuer_id) as b:
        await sign_up(b, address)
        await mailbox.wait_for(to=address, subject_contains="Verify your email")
        answers = [await b.submit("/password/forgot", {"email": address}) for _ in range(7)]
        link = await b.submit("/login-link", {"email": address})
    assert all(a.status_code == 200 and "If an account exists" in a.text for a in answers)
    assert link.status_code == 200 and "If an account exists" in link.text
    for _ in range(5):
        await mailbox.wait_for(to=address, subject_contains="Reset your")
    requested = [m for m in await mailbox.messages(address) if "Verify" not in m.subject]
    assert len(requested) == 5


async def test_verified_address_reaches_the_id_token(platform, tenant, mailbox: Mailbox):
    admin, issuer_id = tenant
    redirect_uri = "http://127.0.0.1/callback"
    spa = await admin.issuer(issuer_id).clients.create(
        {"name": "SPA", "type": "spa", "settings": {
            "redirect_uris": [redirect_uri], "scopes": ["openid", "email"]}}
    )  # fmt: skip
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    params = {
        "response_type": "code", "client_id": spa.id, "redirect_uri": redirect_uri,
        "scope": "openid email", "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }  # fmt: skip
    address = email()

    async def email_verified(b: Browser) -> bool:
        first = await b.get("/authorize", **params)
        location = first.headers["location"]
        if "/login?flow=" in location:
            first = await b.submit(location, {"email": address, "password": PASSWORD})
            location = first.headers["location"]
        if "/consent?flow=" in location:
            location = (await b.submit(location, {"decision": "allow"})).headers["location"]
        code = parse_qs(urlsplit(location).query)["code"][0]
        tokens = await b.http.post(
            f"{b.base}/token",
            data={"grant_type": "authorization_code", "code": code, "client_id": spa.id,
                  "redirect_uri": redirect_uri, "code_verifier": verifier},
        )  # fmt: skip
        assert tokens.status_code == 200, tokens.text
        claims = jwt.decode(tokens.json()["id_token"], options={"verify_signature": False})
        assert claims["email"] == address
        return claims["email_verified"]

    async with Browser(platform, issuer_id) as b:

        async def known() -> bool:
            return (await b.get("/authorize", **params)).status_code == 302

        await eventually(known)
        await sign_up(b, address)
        assert await email_verified(b) is False
        mail = await mailbox.wait_for(to=address, subject_contains="Verify your email")
        assert (await b.get(mail.link("/verify-email?token="))).status_code == 200
        assert await email_verified(b) is True


async def test_required_verification_holds_the_authorization_until_verified(
    platform, issuer_with_keys, admin_of, mailbox: Mailbox
):
    settings = {"access": {"mode": "open", "require_verified_email": True}}
    admin, issuer_id = await portal_issuer(platform, issuer_with_keys, admin_of, settings)
    client_id, redirect_uri = await authorization(platform, admin, issuer_id)
    address = email()
    async with Browser(platform, issuer_id) as b:
        login_url = (await start(b, client_id, redirect_uri)).headers["location"]
        flow_id = login_url.split("flow=", 1)[1]
        created = await b.submit("/signup", {"email": address, "password": PASSWORD}, flow=flow_id)
        assert created.status_code == 200 and "Check your email" in created.text
        assert "authpi_session" not in created.headers.get("set-cookie", "")
        first_mail = await mailbox.wait_for(to=address, subject_contains="Verify your email")
        held = [
            await b.submit(login_url, {"email": address, "password": PASSWORD}) for _ in range(6)
        ]
        for answer in held:
            assert answer.status_code == 403 and "sent a verification link" in answer.text
            assert "authpi_session" not in answer.headers.get("set-cookie", "")
        for _ in range(5):  # sent again on each sign-in, within the requested-mail limit
            await mailbox.wait_for(to=address, subject_contains="Verify your email")
        assert len(await mailbox.messages(address)) == 6
        verified = await b.get(first_mail.link("/verify-email?token="))
        assert verified.status_code == 200 and "Email verified" in verified.text
        assert f'href="/{issuer_id}/login?flow={flow_id}"' in verified.text
        signed_in = await b.submit(login_url, {"email": address, "password": PASSWORD})
    assert signed_in.status_code == 303 and "authpi_session=" in signed_in.headers["set-cookie"]
    assert f"/consent?flow={flow_id}" in signed_in.headers["location"]


async def test_a_login_link_proves_the_address_a_required_verification_asks_for(
    platform, issuer_with_keys, admin_of, mailbox: Mailbox
):
    settings = {"access": {"mode": "open", "require_verified_email": True}}
    _, issuer_id = await portal_issuer(platform, issuer_with_keys, admin_of, settings)
    address = email()
    async with Browser(platform, issuer_id) as b:
        await sign_up(b, address)
        await b.submit("/login-link", {"email": address})
        link = (await mailbox.wait_for(to=address, subject_contains="sign-in link")).link(
            "/login-link/callback?token="
        )
        used = await b.submit(link, {"token": link.split("token=", 1)[1]})
    assert used.status_code == 303 and "authpi_session=" in used.headers["set-cookie"]


async def test_sign_in_rehashes_a_password_hashed_under_other_parameters(platform, tenant):
    """A credential stored under weaker Argon2id parameters (written through the credential
    handler, as an older deployment's settings would have) still signs in; the sign-in stores a
    hash under the deployment's current parameters, and the password keeps working."""
    admin, issuer_id = tenant
    address = email()
    async with Browser(platform, issuer_id) as b:
        await sign_up(b, address)
    (listed,) = await users_of(admin, issuer_id)
    user_id = listed.user_id
    rt = platform.handle.runtimes["token"]
    schema = f"{platform.namespace}_token"
    key = rt.kek.derive("credential-password")
    credentials = Credentials(
        EventStore(rt.pool, schema, "token", rt.ids, projections=[CredentialsView(schema)])
    )
    old = Passwords(memory_kib=8192, time_cost=1).hash_now(PASSWORD)
    await credentials.execute(
        SetPassword(
            issuer_id=issuer_id, user_id=user_id, verifier_id=rt.ids.new("vrf"),
            sealed_hash=seal(key, old.encode(), user_id.encode()), at=rt.clock.now_ms(),
        ),
        Meta(account_id=platform.account_id, issuer_id=issuer_id, subject={"user_id": user_id}),
    )  # fmt: skip

    async def stored() -> str:
        async with rt.pool.connection() as conn:
            row = await PortalQueries(schema).credential(conn, user_id)
        assert row is not None and row.password_hash is not None
        return unseal(key, row.password_hash, user_id.encode()).decode()

    assert await stored() == old
    s = platform.handle.settings
    current = (
        f"$argon2id$v=19$m={s.argon2_memory_kib},t={s.argon2_time_cost},p={s.argon2_parallelism}$"
    )
    assert not old.startswith(current)
    async with Browser(platform, issuer_id) as b:
        first = await b.submit("/login", {"email": address, "password": PASSWORD})
    rehashed = await stored()
    assert first.status_code == 303
    assert rehashed != old and rehashed.startswith(current)
    async with Browser(platform, issuer_id) as b:
        wrong = await b.submit("/login", {"email": address, "password": "not the password"})
        again = await b.submit("/login", {"email": address, "password": PASSWORD})
    assert again.status_code == 303 and wrong.status_code == 401
    assert await stored() == rehashed  # nothing to do the second time


async def test_a_session_older_than_the_verification_requirement_does_not_authorize(
    platform, tenant, mailbox: Mailbox
):
    """An op session opened while the issuer did not require a verified address is not reused
    by /authorize once it does: the browser is sent to sign in, where the portal asks for the
    address to be verified (and mails the link); prompt=none answers login_required."""
    admin, issuer_id = tenant
    client_id, redirect_uri = await authorization(platform, admin, issuer_id)
    address = email()
    async with Browser(platform, issuer_id) as b:
        await sign_up(b, address)  # signed in, address not verified
        first = await start(b, client_id, redirect_uri)
        consent_url = first.headers["location"]
        assert "/consent?flow=" in consent_url
        allowed = await b.submit(consent_url, {"decision": "allow"})
        assert allowed.headers["location"].startswith(f"{redirect_uri}?code=")
        settings = {"access": {"mode": "open", "require_verified_email": True}}
        await admin.issuers.update(issuer_id, {"settings": settings})

        async def held() -> bool:
            answer = await start(b, client_id, redirect_uri)
            return "/login?flow=" in answer.headers.get("location", "")

        await eventually(held)
        silent = await b.get(
            "/authorize", response_type="code", client_id=client_id, redirect_uri=redirect_uri,
            scope="openid email", state="st-2", prompt="none",
            code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            code_challenge_method="S256",
        )  # fmt: skip
        assert silent.status_code == 302
        silent_query = parse_qs(urlsplit(silent.headers["location"]).query)
        assert silent_query["error"] == ["login_required"] and silent_query["state"] == ["st-2"]
        login_url = (await start(b, client_id, redirect_uri)).headers["location"]
        pending = await b.submit(login_url, {"email": address, "password": PASSWORD})
        assert pending.status_code == 403 and "sent a verification link" in pending.text
        mail = await mailbox.wait_for(to=address, subject_contains="Verify your email")
        link = mail.link("/verify-email?token=")
        assert (await b.get(link)).status_code == 200
        signed_in = await b.submit(login_url, {"email": address, "password": PASSWORD})
        assert signed_in.status_code == 303
        assert signed_in.headers["location"].startswith(f"{redirect_uri}?code=")
        again = await start(b, client_id, redirect_uri)  # verified: the session is reused
    assert again.headers["location"].startswith(f"{redirect_uri}?code=")
