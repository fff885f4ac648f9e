"""Idempotency records belong to one principal (DESIGN.md 7, core-api.md 2.4).

Records used to be keyed by (account, Idempotency-Key): a second API key of the same account
that sent the first key's Idempotency-Key and body got the first key's stored 201, including the
one-time `secret_plain` of the key the first one had created. A record now belongs to the
credential that made it (API key, personal token or console user), and the route's scope check
runs before anything is claimed or replayed."""

from __future__ import annotations

import uuid

import httpx
import pytest

from authpi.testing.plugin import eventually


def keys_path(platform) -> str:
    return f"/v1/accounts/{platform.account_id}/api-keys"


@pytest.fixture
async def owner(platform):
    async with httpx.AsyncClient(
        base_url=platform.api_url, auth=(platform.api_key_id, platform.api_key_secret)
    ) as http:
        yield http


@pytest.fixture
async def new_key(platform, owner):
    made: list[httpx.AsyncClient] = []

    async def make(scopes: list[str]) -> httpx.AsyncClient:
        client = await key_client(platform, owner, scopes)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


async def key_client(platform, owner: httpx.AsyncClient, scopes: list[str]) -> httpx.AsyncClient:
    """A client authenticated as a fresh account-level key with `scopes`, once it works."""
    body = {"name": f"principal-{uuid.uuid4().hex[:6]}", "restrictions": {"scopes": scopes}}
    resp = await owner.post(keys_path(platform), json=body)
    assert resp.status_code == 201, resp.text
    data = resp.json()["data"]
    client = httpx.AsyncClient(base_url=platform.api_url, auth=(data["id"], data["secret_plain"]))
    client.key_id = data["id"]  # type: ignore[attr-defined]

    async def works() -> bool:
        return (await client.get("/v1/me")).status_code == 200

    await eventually(works)
    return client


async def test_another_key_of_the_account_never_gets_the_first_keys_response(
    platform, owner, new_key
):
    first = await new_key(["api-keys:read", "api-keys:write"])
    second = await new_key(["api-keys:read", "api-keys:write"])
    headers = {"Idempotency-Key": f"shared-{uuid.uuid4()}"}
    body = {"name": "made-by-first", "restrictions": {"scopes": ["api-keys:read"]}}
    mine = await first.post(keys_path(platform), json=body, headers=headers)
    assert mine.status_code == 201, mine.text
    theirs = await second.post(keys_path(platform), json=body, headers=headers)
    # A fresh execution of the second key's own request, never the first one's response.
    assert theirs.status_code == 201, theirs.text
    assert "idempotent-replayed" not in theirs.headers
    secret = mine.json()["data"]["secret_plain"]
    assert secret not in theirs.text
    assert theirs.json()["data"]["id"] != mine.json()["data"]["id"]
    # Each key still gets its own replay.
    again = await first.post(keys_path(platform), json=body, headers=headers)
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.content == mine.content
    theirs_again = await second.post(keys_path(platform), json=body, headers=headers)
    assert theirs_again.headers.get("idempotent-replayed") == "true"
    assert theirs_again.content == theirs.content


async def test_another_key_with_another_body_is_not_a_mismatch(platform, owner, new_key):
    """A 422 mismatch would tell the second key that someone else used the key."""
    first = await new_key(["api-keys:write"])
    second = await new_key(["api-keys:write"])
    headers = {"Idempotency-Key": f"probe-{uuid.uuid4()}"}
    made = await first.post(keys_path(platform), json={"name": "a", "restrictions": {}},
                            headers=headers)  # fmt: skip
    assert made.status_code == 201, made.text
    other = await second.post(keys_path(platform), json={"name": "b", "restrictions": {}},
                              headers=headers)  # fmt: skip
    assert other.status_code == 201, other.text
    assert "idempotent-replayed" not in other.headers


async def test_a_key_that_lost_its_scope_gets_403_not_the_replay(platform, owner, new_key):
    writer = await new_key(["api-keys:read", "api-keys:write"])
    headers = {"Idempotency-Key": f"lost-scope-{uuid.uuid4()}"}
    body = {"name": "before-the-demotion", "restrictions": {"scopes": ["api-keys:read"]}}
    made = await writer.post(keys_path(platform), json=body, headers=headers)
    assert made.status_code == 201, made.text
    path = f"{keys_path(platform)}/{writer.key_id}"  # type: ignore[attr-defined]
    current = await owner.get(path)
    demote = await owner.patch(
        path,
        json={"restrictions": {"scopes": ["api-keys:read"]}},
        headers={"If-Match": current.headers["etag"]},
    )
    assert demote.status_code == 200, demote.text

    async def demoted() -> bool:
        probe = await writer.post(keys_path(platform), json={"name": ""})
        return probe.status_code == 403

    await eventually(demoted)
    replay = await writer.post(keys_path(platform), json=body, headers=headers)
    assert replay.status_code == 403, replay.text
    assert replay.json()["error"] in {"access_denied", "insufficient_scope"}
    assert "idempotent-replayed" not in replay.headers
    assert made.json()["data"]["secret_plain"] not in replay.text
