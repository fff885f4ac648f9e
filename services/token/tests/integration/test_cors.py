"""CORS on the IdP port (idp-api.md 14 #31), over HTTP: /token, /revoke and /userinfo answer a
preflight and an actual request from the origin of a public client's redirect URI, and nothing
to any other origin (a confidential client's included); discovery and JWKS allow any origin;
/authorize, /logout and /introspect never answer CORS."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

# Public APIs only: also run against the distributed run (platform testing plugin).
pytestmark = pytest.mark.sdk(quick=True)

SPA = "https://spa.example.com"
WEB = "https://web.example.com"
EVIL = "https://evil.example.net"


@pytest.fixture
async def tenant(platform, admin_of):
    admin = admin_of(platform)
    issuer = await admin.issuers.create({"name": f"cors-{uuid.uuid4().hex[:8]}"})
    scope = admin.issuer(issuer.id)
    spa = await scope.clients.create(
        {"name": "SPA", "type": "spa", "settings": {"redirect_uris": [f"{SPA}/callback"]}}
    )
    await scope.clients.create(
        {"name": "Web", "type": "web", "settings": {"redirect_uris": [f"{WEB}/cb"]}}
    )
    yield admin, issuer.id, spa.id
    await admin.close()


async def send(
    platform: Any, method: str, path: str, origin: str | None, **kw: Any
) -> httpx.Response:
    headers = dict(kw.pop("headers", {}))
    if origin is not None:
        headers["Origin"] = origin
    async with httpx.AsyncClient(timeout=30, follow_redirects=False) as http:
        return await http.request(method, f"{platform.idp_url}{path}", headers=headers, **kw)


async def preflight(platform: Any, path: str, origin: str, method: str = "POST") -> httpx.Response:
    return await send(
        platform, "OPTIONS", path, origin,
        headers={
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type",
        },
    )  # fmt: skip


async def test_public_client_origins_may_call_token_revoke_and_userinfo(platform, tenant):
    _, issuer_id, spa_id = tenant
    for path, method in (("/token", "POST"), ("/revoke", "POST"), ("/userinfo", "GET")):
        ok = await preflight(platform, f"/{issuer_id}{path}", SPA, method)
        assert ok.status_code == 204, path
        assert ok.headers["access-control-allow-origin"] == SPA
        assert method in ok.headers["access-control-allow-methods"]
        assert "content-type" in ok.headers["access-control-allow-headers"].lower()
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        assert ok.headers["vary"] == "Origin"
        assert "access-control-allow-credentials" not in ok.headers
        for foreign in (EVIL, WEB, SPA + ":8443", "null"):
            refused = await preflight(platform, f"/{issuer_id}{path}", foreign, method)
            assert refused.status_code == 403, (path, foreign)
            assert "access-control-allow-origin" not in refused.headers
    wrong_method = await preflight(platform, f"/{issuer_id}/token", SPA, "DELETE")
    assert "access-control-allow-origin" not in wrong_method.headers

    form = {"grant_type": "refresh_token", "refresh_token": "nope", "client_id": spa_id}
    real = await send(platform, "POST", f"/{issuer_id}/token", SPA, data=form)
    assert real.status_code == 400 and real.json()["error"] == "invalid_grant"
    assert real.headers["access-control-allow-origin"] == SPA
    assert real.headers["vary"] == "Origin"
    revoked = await send(
        platform, "POST", f"/{issuer_id}/revoke", SPA, data={"token": "x", "client_id": spa_id}
    )
    assert revoked.headers["access-control-allow-origin"] == SPA
    userinfo = await send(
        platform, "GET", f"/{issuer_id}/userinfo", SPA, headers={"Authorization": "Bearer x"}
    )
    assert userinfo.status_code == 401
    assert userinfo.headers["access-control-allow-origin"] == SPA
    for origin in (EVIL, WEB, None):
        other = await send(platform, "POST", f"/{issuer_id}/token", origin, data=form)
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers
        assert "vary" not in other.headers
    # An origin is allowed on its own issuer only.
    elsewhere = await preflight(platform, "/i_nosuchissuer/token", SPA)
    assert "access-control-allow-origin" not in elsewhere.headers


async def test_navigations_and_introspection_never_answer_cors(platform, tenant):
    _, issuer_id, spa_id = tenant
    for method, path in (
        ("GET", f"/{issuer_id}/authorize?client_id={spa_id}"),
        ("GET", f"/{issuer_id}/logout"),
        ("POST", f"/{issuer_id}/introspect"),
    ):
        answer = await send(platform, method, path, SPA)
        assert "access-control-allow-origin" not in answer.headers, path
        pre = await preflight(platform, path.split("?")[0], SPA, method)
        assert "access-control-allow-origin" not in pre.headers, path


async def test_discovery_and_jwks_allow_any_origin(platform, tenant):
    _, issuer_id, _ = tenant
    for path in ("/.well-known/openid-configuration", "/jwks.json"):
        answer = await send(platform, "GET", f"/{issuer_id}{path}", EVIL)
        assert answer.headers["access-control-allow-origin"] == "*"
        pre = await preflight(platform, f"/{issuer_id}{path}", EVIL, "GET")
        assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == "*"


async def test_a_deleted_client_no_longer_opens_its_origin(platform, tenant):
    admin, issuer_id, spa_id = tenant
    assert (await preflight(platform, f"/{issuer_id}/token", SPA)).status_code == 204
    await admin.issuer(issuer_id).clients.delete(spa_id)
    after = await preflight(platform, f"/{issuer_id}/token", SPA)
    assert after.status_code == 403 and "access-control-allow-origin" not in after.headers
