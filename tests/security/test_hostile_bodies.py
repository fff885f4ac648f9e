"""Hostile request bodies (DESIGN.md 7, "Hostile input"): no body does worse than a 4xx.

A JSON body of 100,000 nested `[` used to crash the whole process: a dependency raises Python's
recursion limit to 100,000, so the C JSON decoder recursed past the end of the C stack
(segfault) instead of failing. Bodies are now bounded in nesting depth by a linear scan before any
parse, fingerprint or canonicalization, on the Core API (with and without credentials, with and
without `Idempotency-Key`) and on the IdP's machine endpoints, which accept JSON too.

The platform runs in a subprocess of its own (`authpi up`), so that a crash shows as a failed
assertion (the server no longer answers) rather than taking the test run down with it."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from authpi.platform.testing.process import Running, platform_process
from authpi.testing.plugin import eventually

DEEP = {
    "arrays": b"[" * 100_000,
    "closed arrays": b"[" * 100_000 + b"]" * 100_000,
    "objects": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "inside a field": b'{"name": "x", "metadata": {"k": ' + b"[" * 100_000 + b"}}",
}
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
async def running(infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    async with platform_process(1, tmp_path_factory.mktemp("hostile"), infra) as proc:
        yield proc


@pytest.fixture(scope="module")
async def api(running: Running) -> AsyncIterator[httpx.AsyncClient]:
    creds = running.creds
    async with httpx.AsyncClient(
        base_url=running.api_url, auth=(creds["api_key_id"], creds["api_key_secret"]), timeout=30
    ) as http:
        yield http


@pytest.fixture(scope="module")
async def client(running: Running, api: httpx.AsyncClient) -> tuple[str, str, str]:
    """(issuer id, client id, client secret): an M2M client to aim the IdP requests at."""
    account = running.creds["account_id"]
    issuer = await api.post(f"/v1/accounts/{account}/issuers", json={"name": "hostile"})
    assert issuer.status_code == 201, issuer.text
    issuer_id = issuer.json()["data"]["id"]
    created = await api.post(
        f"/v1/accounts/{account}/issuers/{issuer_id}/clients",
        json={"name": "m2m", "type": "m2m", "settings": {"grant_types": ["client_credentials"]}},
    )
    assert created.status_code == 201, created.text
    data = created.json()["data"]

    async def known_to_the_idp() -> bool:
        async with httpx.AsyncClient(base_url=running.idp_url, timeout=10) as idp:
            return (await idp.get(f"/{issuer_id}/jwks.json")).status_code == 200

    await eventually(known_to_the_idp)
    return issuer_id, data["id"], data["secret"]


async def still_serving(running: Running, api: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(f"{running.api_url}/healthz")).status_code == 200
        assert (await http.get(f"{running.idp_url}/healthz")).status_code == 200
    assert (await api.get("/v1/me")).status_code == 200
    assert running.proc.returncode is None


def assert_core_error(resp: httpx.Response, status: int, error: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == error and body["error_description"]
    assert isinstance(body["retryable"], bool)


def assert_oauth_error(resp: httpx.Response, status: int, error: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body.keys() == {"error", "error_description"} and body["error"] == error


@pytest.mark.parametrize("shape", DEEP)
@pytest.mark.parametrize("idempotency", [False, True])
async def test_deep_body_on_the_core_api_is_400(running, api, shape, idempotency):
    headers = dict(JSON)
    if idempotency:
        headers["Idempotency-Key"] = str(uuid.uuid4())
    url = f"/v1/accounts/{running.creds['account_id']}/issuers"
    resp = await api.post(url, content=DEEP[shape], headers=headers)
    assert_core_error(resp, 400, "invalid_request")
    await still_serving(running, api)


@pytest.fixture(scope="module")
async def sso_domains(running: Running, api: httpx.AsyncClient) -> str:
    """An organization's SSO domains: the one Core API route that reads its (optional) JSON body
    itself instead of through the app's decoder."""
    issuers = f"/v1/accounts/{running.creds['account_id']}/issuers"
    issuer = await api.post(issuers, json={"name": "deep-sso"})
    assert issuer.status_code == 201, issuer.text
    orgs = f"{issuers}/{issuer.json()['data']['id']}/organizations"
    org = await api.post(orgs, json={"name": "Org"})
    assert org.status_code == 201, org.text
    return f"{orgs}/{org.json()['data']['id']}/sso/domains"


@pytest.mark.parametrize("shape", DEEP)
async def test_deep_body_on_the_sso_domain_route_is_400(running, api, sso_domains, shape):
    """It once parsed the body unbounded: a RecursionError, a 500."""
    resp = await api.post(sso_domains, content=DEEP[shape], headers=JSON)
    assert_core_error(resp, 400, "invalid_request")
    await still_serving(running, api)


@pytest.mark.parametrize("shape", DEEP)
async def test_deep_body_on_the_core_api_without_credentials_is_401(running, api, shape):
    async with httpx.AsyncClient(base_url=running.api_url, timeout=30) as anonymous:
        url = f"/v1/accounts/{running.creds['account_id']}/issuers"
        headers = {**JSON, "Idempotency-Key": str(uuid.uuid4())}
        resp = await anonymous.post(url, content=DEEP[shape], headers=headers)
    assert_core_error(resp, 401, "unauthorized_client")
    await still_serving(running, api)


@pytest.mark.parametrize("shape", DEEP)
@pytest.mark.parametrize("endpoint", ["token", "introspect", "revoke"])
@pytest.mark.parametrize("authenticated", [False, True])
async def test_deep_body_on_the_idp_is_400(running, api, client, shape, endpoint, authenticated):
    issuer_id, client_id, secret = client
    headers = dict(JSON)
    if authenticated:
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        headers["Authorization"] = f"Basic {basic}"
    # The IdP caps its bodies at 64 KiB: the deepest body that fits is refused for its depth.
    body = DEEP[shape][: 60 * 1024]
    async with httpx.AsyncClient(base_url=running.idp_url, timeout=30) as idp:
        resp = await idp.post(f"/{issuer_id}/{endpoint}", content=body, headers=headers)
    assert_oauth_error(resp, 400, "invalid_request")
    await still_serving(running, api)


async def test_shallow_json_still_works_on_both_ports(running, api, client):
    issuer_id, client_id, secret = client
    nested = {"name": "deep-enough", "metadata": {"a": "[[[[{{{{" * 100}}
    url = f"/v1/accounts/{running.creds['account_id']}/issuers"
    resp = await api.post(url, json=nested, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert resp.status_code == 201, resp.text
    async with httpx.AsyncClient(base_url=running.idp_url, timeout=30) as idp:
        form = {"grant_type": "client_credentials", "client_id": client_id,
                "client_secret": secret}  # fmt: skip
        token = await idp.post(f"/{issuer_id}/token", json=form)
    assert token.status_code == 200, token.text


async def test_huge_bodies_are_413(running, api, client):
    issuer_id, _, _ = client
    huge = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    url = f"/v1/accounts/{running.creds['account_id']}/issuers"
    for headers in (JSON, {**JSON, "Idempotency-Key": str(uuid.uuid4())}):
        resp = await api.post(url, content=huge, headers=headers)
        assert resp.status_code == 413, resp.text
    async with httpx.AsyncClient(base_url=running.idp_url, timeout=30) as idp:
        resp = await idp.post(f"/{issuer_id}/token", content=huge, headers=JSON)
    assert_oauth_error(resp, 413, "invalid_request")
    await still_serving(running, api)


@pytest.mark.parametrize(
    "body",
    [b'{"name": "\xff\xfe"}', b'{"name": "\xed\xa0\x80"}', b"\xc3(", b'"\xff'],
)
async def test_invalid_utf8_is_400(running, api, client, body):
    issuer_id, _, _ = client
    url = f"/v1/accounts/{running.creds['account_id']}/issuers"
    for headers in (JSON, {**JSON, "Idempotency-Key": str(uuid.uuid4())}):
        resp = await api.post(url, content=body, headers=headers)
        assert_core_error(resp, 400, "invalid_request")
    async with httpx.AsyncClient(base_url=running.idp_url, timeout=30) as idp:
        for media in ("application/json", "application/x-www-form-urlencoded"):
            resp = await idp.post(f"/{issuer_id}/token", content=body,
                                  headers={"content-type": media})  # fmt: skip
            assert_oauth_error(resp, 400, "invalid_request")
    await still_serving(running, api)


@pytest.mark.parametrize("depth", [1_000, 50_000])
async def test_deep_bearer_token_header_is_401(running, api, depth):
    """A console user's access token is a JWT whose header the gateway decodes before anything
    is verified: bounded in depth like a body."""
    header = base64.urlsafe_b64encode(b'{"alg":' + b"[" * depth).rstrip(b"=").decode()
    token = f"{header}.e30.c2ln"
    async with httpx.AsyncClient(base_url=running.api_url, timeout=30) as http:
        resp = await http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert 400 <= resp.status_code < 500, resp.text
    await still_serving(running, api)
