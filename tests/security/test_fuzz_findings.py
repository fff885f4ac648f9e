"""Inputs found by fuzzing both ports from outside (schemathesis over /openapi.json, plus raw
HTTP probes), replayed as plain requests. No input may do worse than a 4xx in the spec's error
format, and every response must match the port's own OpenAPI document."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from authpi.platform.testing.plugin import RunningPlatform
from authpi.testing.plugin import eventually

# Header values travel as bytes; these are not ASCII, so not base64 either.
NON_ASCII_BASIC = b"Basic \xff\xfe"
SPEC_ERROR_FIELDS = {"error", "error_description", "retryable"}


@pytest.fixture
async def core(platform: RunningPlatform) -> AsyncIterator[httpx.AsyncClient]:
    auth = (platform.api_key_id, platform.api_key_secret)
    async with httpx.AsyncClient(base_url=platform.api_url, auth=auth) as http:
        yield http


@pytest.fixture
async def issuer_id(core: httpx.AsyncClient, platform: RunningPlatform) -> str:
    created = await core.post(f"/v1/accounts/{platform.account_id}/issuers", json={"name": "fz"})
    assert created.status_code == 201, created.text
    issuer_id = created.json()["data"]["id"]
    async with httpx.AsyncClient(base_url=platform.idp_url) as idp:

        async def known() -> bool:
            discovery = await idp.get(f"/{issuer_id}/.well-known/openid-configuration")
            return discovery.status_code == 200

        await eventually(known)
    return issuer_id


async def test_non_ascii_basic_credentials_on_the_core_api_are_a_401(
    platform: RunningPlatform,
) -> None:
    async with httpx.AsyncClient(base_url=platform.api_url) as http:
        response = await http.get("/v1/me", headers={"Authorization": NON_ASCII_BASIC})
    assert response.status_code == 401
    assert SPEC_ERROR_FIELDS <= response.json().keys()


@pytest.mark.parametrize("endpoint", ["token", "introspect", "revoke"])
async def test_non_ascii_basic_credentials_on_idp_endpoints_are_invalid_client(
    platform: RunningPlatform, issuer_id: str, endpoint: str
) -> None:
    form = {"grant_type": "client_credentials", "token": "x"}
    async with httpx.AsyncClient(base_url=platform.idp_url) as http:
        response = await http.post(
            f"/{issuer_id}/{endpoint}", data=form, headers={"Authorization": NON_ASCII_BASIC}
        )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_non_ascii_basic_credentials_on_keyinfo_are_a_401(
    platform: RunningPlatform, issuer_id: str
) -> None:
    async with httpx.AsyncClient(base_url=platform.idp_url) as http:
        response = await http.get(
            f"/{issuer_id}/keyinfo", headers={"Authorization": NON_ASCII_BASIC}
        )
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized_client"


async def openapi_of(base_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url) as http:
        response = await http.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    methods = {"get", "post", "put", "patch", "delete"}
    return [
        (path, method, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in methods
    ]


def error_schema(document: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any]:
    """The schema an error response of this operation is documented with (status or default)."""
    responses = document["paths"][path][method]["responses"]
    response = responses.get(str(status)) or responses["default"]
    ref = response["content"]["application/json"]["schema"]["$ref"]
    return document["components"]["schemas"][ref.rpartition("/")[2]]


@pytest.mark.parametrize(("port", "schema"), [("api_url", "ApiError"), ("idp_url", "OAuthError")])
async def test_every_operation_documents_the_error_format_it_sends(
    platform: RunningPlatform, port: str, schema: str
) -> None:
    document = await openapi_of(getattr(platform, port))
    assert {"error", "error_description"} <= set(
        document["components"]["schemas"][schema]["required"]
    )
    for path, method, op in operations(document):
        assert "default" in op["responses"], (method, path)
        for status, response in op["responses"].items():
            if status[0] in "123":
                continue
            body = json.dumps(response)
            # litestar's own ValidationException body, which no route sends
            assert '"status_code"' not in body and '"detail"' not in body, (method, path, status)


ACCOUNT = "/v1/accounts/{account_id}"
USER_TOKENS = ACCOUNT + "/issuers/{issuer_id}/users/{user_id}/tokens"


@pytest.mark.parametrize(
    ("path", "values", "status"),
    [
        (ACCOUNT + "/issuers", "?status=null", 400),
        (ACCOUNT + "/api-keys/{key_id}", {"key_id": "key_01a24823f2247ce0a1e5023c0c25100f"}, 404),
        (USER_TOKENS, {"user_id": "usr_missing"}, 404),
    ],
)
async def test_core_api_errors_match_the_documented_schema(
    core: httpx.AsyncClient,
    platform: RunningPlatform,
    issuer_id: str,
    path: str,
    values: str | dict[str, str],
    status: int,
) -> None:
    ids = {"account_id": platform.account_id, "issuer_id": issuer_id}
    query = values if isinstance(values, str) else ""
    url = path.format(**ids, **(values if isinstance(values, dict) else {})) + query
    response = await core.get(url)
    assert response.status_code == status
    schema = error_schema(await openapi_of(platform.api_url), path, "get", status)
    assert set(schema["required"]) == SPEC_ERROR_FIELDS
    assert SPEC_ERROR_FIELDS <= response.json().keys()


@pytest.mark.parametrize(
    "path",
    [
        "/v1/accounts/{account_id}/issuers/{issuer_id}/users/%00",
        "/v1/accounts/{account_id}/tokens/%00",
    ],
)
async def test_a_nul_in_a_path_parameter_names_no_resource(
    core: httpx.AsyncClient, platform: RunningPlatform, issuer_id: str, path: str
) -> None:
    url = path.format(account_id=platform.account_id, issuer_id=issuer_id)
    response = await core.get(url)
    assert response.status_code == 404
    assert SPEC_ERROR_FIELDS <= response.json().keys()


@pytest.mark.parametrize("query", ["email=a%00b", "name=%00", "email=%FF", "%00=1"])
async def test_unstorable_text_in_the_query_string_is_a_400(
    core: httpx.AsyncClient, platform: RunningPlatform, issuer_id: str, query: str
) -> None:
    url = f"/v1/accounts/{platform.account_id}/issuers/{issuer_id}/users?{query}"
    response = await core.get(url)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "key",
    [
        b'["users",99999999999999999999999,"usr_x"]',
        b'["users",-99999999999999999999999,"usr_x"]',
        b'["users",1,"usr_\\u0000"]',
    ],
)
async def test_a_forged_cursor_out_of_postgresql_range_is_a_400(
    core: httpx.AsyncClient, platform: RunningPlatform, issuer_id: str, key: bytes
) -> None:
    cursor = base64.urlsafe_b64encode(key).rstrip(b"=").decode()
    url = f"/v1/accounts/{platform.account_id}/issuers/{issuer_id}/users"
    response = await core.get(url, params={"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["fields"][0]["field"] == "cursor"


async def test_a_json_string_that_is_not_utf8_is_a_400(
    core: httpx.AsyncClient, platform: RunningPlatform, issuer_id: str
) -> None:
    url = f"/v1/accounts/{platform.account_id}/issuers/{issuer_id}/users"
    body = b'{"email":"\xff\xfe@b.test"}'
    response = await core.post(url, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_a_204_is_documented_as_it_is_sent_without_a_body(
    core: httpx.AsyncClient, platform: RunningPlatform, issuer_id: str
) -> None:
    response = await core.delete(f"/v1/accounts/{platform.account_id}/issuers/{issuer_id}")
    assert response.status_code == 204
    assert "content-type" not in response.headers and not response.content
    document = await openapi_of(platform.api_url)
    no_content = [op["responses"]["204"] for _, _, op in operations(document)
                  if "204" in op["responses"]]  # fmt: skip
    assert no_content and all("content" not in r for r in no_content)


@pytest.fixture
async def sso_domains(core: httpx.AsyncClient, platform: RunningPlatform, issuer_id: str) -> str:
    """The SSO domains of a new organization: its add route reads its optional body itself."""
    orgs = f"/v1/accounts/{platform.account_id}/issuers/{issuer_id}/organizations"
    org = await core.post(orgs, json={"name": "sso"})
    assert org.status_code == 201, org.text
    return f"{orgs}/{org.json()['data']['id']}/sso/domains"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"domain": "\xff.example"}', 400),  # once a 500 (UnicodeDecodeError)
        (b'{"domain": "a.example"', 400),
        (b'{"domain": 5}', 422),
        (b'{"domain": "127.0.0.1"}', 422),  # an address, never an email domain
        (b'{"domain": "10.0.0.1."}', 422),
    ],
)
async def test_hostile_sso_domain_bodies_are_refused_in_the_error_format(
    core: httpx.AsyncClient, sso_domains: str, body: bytes, status: int
) -> None:
    response = await core.post(
        sso_domains, content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert SPEC_ERROR_FIELDS <= response.json().keys()
    assert response.json()["error"] == "invalid_request"


async def test_event_timestamps_are_documented_as_the_integers_they_are(
    core: httpx.AsyncClient, platform: RunningPlatform, issuer_id: str
) -> None:
    """schemathesis: `Event.timestamp` was a `oneOf` of integer and number, which an integer
    matches twice, so every event listed broke its own response schema."""
    document = await openapi_of(platform.api_url)
    assert document["components"]["schemas"]["Event"]["properties"]["timestamp"] == {
        "type": "integer"
    }
    listed = await core.get(
        f"/v1/accounts/{platform.account_id}/events", params={"issuer_id": issuer_id}
    )
    assert listed.status_code == 200, listed.text
    stamps = [event["timestamp"] for event in listed.json()["data"]]
    assert stamps and all(type(stamp) is int for stamp in stamps)
