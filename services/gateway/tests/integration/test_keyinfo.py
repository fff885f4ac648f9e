"""`GET /{issuer_id}/keyinfo` on the IdP port (idp-api.md 10.1, open point 19): an API key
presents its own id and secret (HTTP Basic) and gets its public key object, never its secret;
every key that is not active, and every key of another issuer, gets the same RFC 6749 401."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from authpi.contracts.base import Actor
from authpi.contracts.console import PLATFORM_ISSUER_ID
from authpi.directory.handlers.api_keys import KeyRestrictions
from authpi.platform.testing.tenants import basic
from authpi.testing.plugin import eventually


async def keyinfo(platform, issuer_id: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=platform.idp_url) as http:
        return await http.get(f"/{issuer_id}/keyinfo", headers=headers)


@pytest.fixture
async def issuer(admin) -> str:
    return (await admin.issuers.create({"name": f"keyinfo-{uuid.uuid4().hex[:6]}"})).id


@pytest.fixture
async def org_keys(admin, issuer):
    org = await admin.issuer(issuer).organizations.create({"name": "Customer"})
    return org.id, admin.issuer(issuer).organization(org.id).api_keys


def assert_refused(resp: httpx.Response, status: int = 401, error: str = "unauthorized_client"):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body.keys() == {"error", "error_description"} and body["error"] == error
    assert resp.headers["cache-control"] == "no-store"
    if status == 401:
        assert resp.headers["www-authenticate"].startswith("Basic ")


async def test_an_org_key_gets_its_public_key_object(platform, issuer, org_keys):
    org_id, keys = org_keys
    expires_at = int(time.time() * 1000) + 86_400_000
    created = await keys.create({
        "name": "ci-deploy", "expires_at": expires_at,
        "restrictions": {"scopes": ["webhooks:manage", "issuers.users:read"]},
    })  # fmt: skip
    resp = await keyinfo(platform, issuer, basic(created.id, created.secret_plain))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "id": created.id,
        "type": "api_key",
        "org_id": org_id,
        "name": "ci-deploy",
        "status": "active",
        "restrictions": {"scopes": ["issuers.users:read", "webhooks:manage"]},
        "expires_at": expires_at,
        "created_at": created.created_at,
    }
    assert created.secret_plain not in resp.text and "secret" not in resp.text
    assert resp.headers["cache-control"] == "no-store"


async def test_wrong_unknown_and_malformed_credentials_are_401(platform, issuer, org_keys):
    _, keys = org_keys
    created = await keys.create({"name": "svc", "restrictions": {}})
    wrong = await keyinfo(platform, issuer, basic(created.id, "not-the-secret"))
    unknown = await keyinfo(platform, issuer, basic(f"key_{'0' * 32}", created.secret_plain))
    for resp in (wrong, unknown):
        assert_refused(resp)
    assert wrong.json() == unknown.json()
    for headers in (
        {},
        {"Authorization": "Basic not-base64!"},
        {"Authorization": f"Bearer {created.secret_plain}"},
    ):
        assert_refused(await keyinfo(platform, issuer, headers))


async def test_blocked_and_revoked_keys_are_401(platform, issuer, org_keys):
    org_id, keys = org_keys
    blocked = await keys.create({"name": "blocked", "restrictions": {}})
    revoked = await keys.create({"name": "revoked", "restrictions": {}})
    for key in (blocked, revoked):
        resp = await keyinfo(platform, issuer, basic(key.id, key.secret_plain))
        assert resp.status_code == 200, resp.text
    # The SDK has no block/revoke for organization keys: the Core API routes directly.
    base = f"/v1/accounts/{platform.account_id}/issuers/{issuer}/organizations/{org_id}/api-keys"
    admin = basic(platform.api_key_id, platform.api_key_secret)
    async with httpx.AsyncClient(base_url=platform.api_url, headers=admin) as http:
        for key, action in ((blocked, "block"), (revoked, "revoke")):
            resp = await http.post(f"{base}/{key.id}/{action}", json={})
            assert resp.status_code == 200, resp.text

    for key, status in ((blocked, "blocked"), (revoked, "revoked")):

        async def refused(key=key) -> httpx.Response | None:
            resp = await keyinfo(platform, issuer, basic(key.id, key.secret_plain))
            return resp if resp.status_code == 401 else None

        resp = await eventually(refused, timeout=5.0, interval=0.05)
        assert_refused(resp)
        assert status in resp.json()["error_description"]
        assert key.secret_plain not in resp.text


async def test_an_expired_key_is_401(platform, directory):
    past = KeyRestrictions(expires_at=int(time.time() * 1000) - 1)
    key = await directory.create_api_key(
        platform.account_id, "expired", [], actor=Actor(type="system"), restrictions=past
    )
    resp = await keyinfo(platform, PLATFORM_ISSUER_ID, basic(key.key_id, key.secret))
    assert_refused(resp)
    assert "expired" in resp.json()["error_description"]


async def test_a_key_of_another_issuer_is_refused_as_unknown(platform, admin, issuer, org_keys):
    _, keys = org_keys
    created = await keys.create({"name": "svc", "restrictions": {}})
    other = (await admin.issuers.create({"name": f"other-{uuid.uuid4().hex[:6]}"})).id
    unknown = await keyinfo(platform, other, basic(f"key_{'0' * 32}", created.secret_plain))
    elsewhere = await keyinfo(platform, other, basic(created.id, created.secret_plain))
    assert_refused(elsewhere)
    assert elsewhere.json() == unknown.json()
    nowhere = await keyinfo(platform, f"i_{'0' * 25}", basic(created.id, created.secret_plain))
    assert nowhere.json() == unknown.json()


async def test_an_account_key_answers_at_the_platform_issuer_only(platform, issuer):
    own = basic(platform.api_key_id, platform.api_key_secret)
    resp = await keyinfo(platform, PLATFORM_ISSUER_ID, own)
    assert resp.status_code == 200, resp.text
    assert resp.json()["id"] == platform.api_key_id
    assert resp.json()["org_id"] == "org_" + platform.account_id.removeprefix("acc_")
    assert_refused(await keyinfo(platform, issuer, own))


async def test_a_source_ip_outside_the_allowlist_is_403(platform, issuer, org_keys):
    _, keys = org_keys
    created = await keys.create(
        {"name": "fenced", "restrictions": {"ip_allowlist": ["203.0.113.0/24"]}}
    )
    resp = await keyinfo(platform, issuer, basic(created.id, created.secret_plain))
    assert_refused(resp, 403, "access_denied")
