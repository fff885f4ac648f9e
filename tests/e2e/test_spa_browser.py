"""A single-page application as it really runs: in Chromium, on its own origin (a page served on
loopback, the origin of its registered redirect URI), it receives the code and calls the token,
userinfo and revocation endpoints with fetch(). That works only when those endpoints answer
CORS for the origins of a public client's registered redirect URIs (idp-api.md 14 #31), and
never for another origin."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from authpi.platform.testing.login import (
    PASSWORD,
    SCOPES,
    LoginTenant,
    PortalBrowser,
    click,
    fill,
    login_tenant,
    new_email,
    query_of,
)

# Runs in the application's page: POST the code to the token endpoint, then call userinfo with
# the access token (a preflighted request: it carries Authorization), then revoke the refresh
# token. Reports what the page could read, or the error fetch() raised.
SPA_SCRIPT = """
const [tokenUrl, userinfoUrl, revokeUrl, form, done] = arguments;
(async () => {
  const out = {};
  try {
    const t = await fetch(tokenUrl, {method: "POST", body: new URLSearchParams(form)});
    out.token_status = t.status;
    const tokens = await t.json();
    out.has_access_token = typeof tokens.access_token === "string";
    const u = await fetch(userinfoUrl, {headers: {Authorization: "Bearer " + tokens.access_token}});
    out.userinfo_status = u.status;
    out.userinfo = await u.json();
    const r = await fetch(revokeUrl, {method: "POST", body: new URLSearchParams({
      token: tokens.refresh_token, token_type_hint: "refresh_token", client_id: form.client_id})});
    out.revoke_status = r.status;
    out.refresh_token = tokens.refresh_token;
  } catch (e) {
    out.error = String(e);
  }
  done(JSON.stringify(out));
})();
"""


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@pytest.fixture
async def tenant(platform, site):
    made = await login_tenant(
        platform, name="spa", redirect_uri=f"{site.url}/callback",
        post_logout_uri=f"{site.url}/signed-out", client_name="Acme SPA",
    )  # fmt: skip
    yield made
    await made.admin.close()


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


async def test_cors_only_for_the_public_clients_registered_origins(tenant: LoginTenant, site):
    t = tenant
    origin = site.url  # the origin of the SPA's registered redirect URI
    preflight_headers = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    async with httpx.AsyncClient(timeout=30) as http:
        # Never for another origin, on any endpoint.
        for path in ("token", "userinfo", "revoke", "authorize", "logout", "introspect"):
            foreign = await http.options(
                f"{t.issuer_url}/{path}",
                headers={"Origin": "https://evil.example.com", **preflight_headers},
            )
            assert "access-control-allow-origin" not in foreign.headers, path
            assert "access-control-allow-credentials" not in foreign.headers, path
        # Never on the navigations, even for the registered origin.
        for path in ("authorize", "logout"):
            nav = await http.options(
                f"{t.issuer_url}/{path}", headers={"Origin": origin, **preflight_headers}
            )
            assert "access-control-allow-origin" not in nav.headers, path
        # The public keys and metadata are for everyone.
        for path in ("jwks.json", ".well-known/openid-configuration"):
            public = await http.get(f"{t.issuer_url}/{path}", headers={"Origin": origin})
            assert public.headers["access-control-allow-origin"] == "*", path
        # For the SPA's own origin on the endpoints it calls.
        allowed: dict[str, dict[str, str]] = {}
        for path in ("token", "userinfo", "revoke"):
            preflight = await http.options(
                f"{t.issuer_url}/{path}", headers={"Origin": origin, **preflight_headers}
            )
            allowed[path] = cors_headers(preflight)
    assert all(h.get("access-control-allow-origin") == origin for h in allowed.values()), allowed
    for path, headers in allowed.items():
        assert "POST" in headers.get("access-control-allow-methods", "") or path == "userinfo"
        assert "authorization" in headers.get("access-control-allow-headers", "").lower()


async def test_spa_in_chromium_exchanges_its_code_with_fetch(tenant: LoginTenant, site, browser):
    t = tenant
    email = new_email("spa")
    async with PortalBrowser() as b:
        assert (await b.sign_up(t.issuer_url, email, PASSWORD)).status_code == 303
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(12)
    await browser.get(
        f"{t.issuer_url}/authorize?"
        + urlencode({"response_type": "code", "client_id": t.spa_id,
                     "redirect_uri": t.redirect_uri, "scope": " ".join(SCOPES), "state": state,
                     "code_challenge": challenge, "code_challenge_method": "S256"})
    )  # fmt: skip
    await browser.run(fill({"email": email, "password": PASSWORD}))
    await browser.run(click("allow"))
    landed = await browser.run(lambda d: d.current_url)
    assert urlsplit(landed).path == "/callback" and query_of(landed)["state"] == state

    form = {"grant_type": "authorization_code", "code": query_of(landed)["code"],
            "redirect_uri": t.redirect_uri, "client_id": t.spa_id,
            "code_verifier": verifier}  # fmt: skip

    def run_spa(d: Any) -> dict[str, Any]:
        d.set_script_timeout(30)
        raw = d.execute_async_script(
            SPA_SCRIPT, f"{t.issuer_url}/token", f"{t.issuer_url}/userinfo",
            f"{t.issuer_url}/revoke", form,
        )  # fmt: skip
        return json.loads(raw)

    result = await browser.run(run_spa)
    assert result.get("error") is None, result
    assert result["token_status"] == 200 and result["has_access_token"], result
    assert result["userinfo_status"] == 200 and result["userinfo"]["email"] == email
    assert result["revoke_status"] == 200
    refused = await t.token(
        {"grant_type": "refresh_token", "refresh_token": result["refresh_token"],
         "client_id": t.spa_id}
    )  # fmt: skip
    assert refused.json()["error"] == "invalid_grant"
