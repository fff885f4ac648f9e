"""Core API authentication through the running platform (core-api.md 1.2): HTTP Basic API keys
checked against the gateway's key cache, Bearer refused for now, `GET /v1/me`."""

from __future__ import annotations

import base64

import httpx
import pytest
from authpi_admin import AuthPIAdmin
from authpi_admin.errors import AuthenticationError

from authpi.contracts.base import Actor
from authpi.contracts.scopes import ALL_SCOPES
from authpi.platform.testing.tenants import basic
from authpi.testing.plugin import eventually

ADMIN = Actor(type="system")


async def me(platform, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=platform.api_url) as http:
        return await http.get("/v1/me", headers=headers)


async def test_bootstrap_key_gets_its_identity_with_one_account(platform):
    resp = await me(platform, basic(platform.api_key_id, platform.api_key_secret))
    assert resp.status_code == 200, resp.text
    assert list(resp.json()) == ["data"]
    identity = resp.json()["data"]
    assert identity["type"] == "api_key" and identity["key_id"] == platform.api_key_id
    assert identity["user_id"] is None and identity["issuer_id"].startswith("i_")
    assert identity["organizations"] == []
    [account] = identity["accounts"]
    assert account["account_id"] == platform.account_id
    assert account["org_id"] == "org_" + platform.account_id.removeprefix("acc_")
    assert account["scopes"] == sorted(ALL_SCOPES)


async def test_sdk_whoami_and_account_resolution_use_v1_me(platform):
    key = (platform.api_key_id, platform.api_key_secret)
    async with AuthPIAdmin(api_key=key, base_url=platform.api_url, retries=False) as admin:
        identity = await admin.whoami()
        assert identity["key_id"] == platform.api_key_id
        assert await admin.http.resolve_account_id() == platform.account_id


async def test_key_without_scopes_still_reads_v1_me(platform, directory):
    key = await directory.create_api_key(platform.account_id, "no scopes", [], actor=ADMIN)
    resp = await eventually(lambda: _ok(me(platform, basic(key.key_id, key.secret))))
    assert resp.json()["data"]["accounts"][0]["scopes"] == []


async def _ok(pending):
    resp = await pending
    return resp if resp.status_code == 200 else None


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic"},
        {"Authorization": "Basic not-base64!"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        {"Authorization": "Digest abc"},
    ],
    ids=["missing", "empty-basic", "not-base64", "no-colon", "other-scheme"],
)
async def test_missing_or_malformed_credentials_are_401(platform, headers):
    resp = await me(platform, headers)
    body = resp.json()
    assert resp.status_code == 401
    assert body["error"] == "unauthorized_client" and body["retryable"] is False
    assert body["reference"] == resp.headers["x-request-id"]
    assert resp.headers["www-authenticate"].startswith("Basic")


async def test_wrong_secret_and_unknown_key_are_the_same_401(platform):
    wrong = await me(platform, basic(platform.api_key_id, "not-the-secret"))
    unknown = await me(platform, basic("key_" + "0" * 32, platform.api_key_secret))
    for resp in (wrong, unknown):
        assert resp.status_code == 401
        assert resp.json()["error"] == "unauthorized_client"
    assert wrong.json()["error_description"] == unknown.json()["error_description"]


async def test_api_key_secret_as_bearer_is_refused(platform):
    resp = await me(platform, {"Authorization": f"Bearer {platform.api_key_secret}"})
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_token"


async def test_sdk_reports_a_wrong_secret_as_authentication_error(platform):
    key = (platform.api_key_id, "wrong-secret")
    async with AuthPIAdmin(api_key=key, base_url=platform.api_url, retries=False) as admin:
        with pytest.raises(AuthenticationError) as caught:
            await admin.whoami()
    assert caught.value.error == "unauthorized_client"
    assert caught.value.reference.startswith("req_")
