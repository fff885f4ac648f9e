"""The grant-subset rule on credentials (core-api.md 5.1): a caller acts only on an API key or
personal token whose Core API scopes it holds itself. A key holding only `api-keys:manage` +
`api-keys:read` once rotated the bootstrap key and received its new secret, which then worked
with every scope. Each attack below must answer 403 `insufficient_scope`, append no event, and
leave the target as it was; a key within the caller's scopes stays manageable. The same holds for
webhook secrets: only `webhooks:manage` is handed a new one, however the PATCH asks for it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
from psycopg import sql

from authpi.contracts.scopes import ALL_SCOPES
from authpi.platform.testing.plugin import RunningPlatform
from authpi.platform.testing.tenants import ADMIN, key_ready, new_account, part, schema_of

WEAK_ACCOUNT_SCOPES = ["api-keys:manage", "api-keys:read"]
WEAK_ORG_SCOPES = ["issuers.organizations.api-keys:write", "issuers.organizations.api-keys:delete"]
WEAK_TOKEN_SCOPES = ["tokens:write", "tokens:delete"]


class Tenant(msgspec.Struct, kw_only=True):
    account_id: str
    strong: httpx.AsyncClient  # an all-scopes key, as the bootstrap key is
    strong_key_id: str


@pytest.fixture
async def tenant(platform: RunningPlatform) -> AsyncIterator[Tenant]:
    account_id, (key_id, secret) = await new_account(platform, f"t-{uuid.uuid4().hex[:6]}")
    async with httpx.AsyncClient(
        base_url=f"{platform.api_url}/v1/accounts/{account_id}", auth=(key_id, secret), timeout=30
    ) as strong:
        yield Tenant(account_id=account_id, strong=strong, strong_key_id=key_id)


async def client_with(
    platform: RunningPlatform, account_id: str, scopes: list[str]
) -> httpx.AsyncClient:
    directory = part(platform, "directory")
    key = await directory.create_api_key(account_id, "weak", scopes, actor=ADMIN)
    await key_ready(platform, key.key_id, key.secret)
    return httpx.AsyncClient(
        base_url=f"{platform.api_url}/v1/accounts/{account_id}",
        auth=(key.key_id, key.secret),
        timeout=30,
    )


async def events_of(platform: RunningPlatform, pool: Any, stream_id: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {}.events WHERE stream_id = %s").format(
        schema_of(platform, "directory")
    )
    async with pool.connection() as conn:
        cur = await conn.execute(query, [stream_id])
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


def data(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 300, response.text
    return response.json()["data"]


def refused(response: httpx.Response) -> bool:
    return response.status_code == 403 and response.json()["error"] == "insufficient_scope"


# (method, path suffix, body) of every action on one credential.
KEY_ACTIONS = {
    "rotate": ("POST", "/rotate", {}),
    "unblock": ("POST", "/unblock", None),
    "block": ("POST", "/block", {}),
    "revoke": ("POST", "/revoke", {}),
    "patch-name": ("PATCH", "", {"name": "taken"}),
    "patch-expiry": ("PATCH", "", {"expires_at": None}),
    "delete": ("DELETE", "", None),
}


async def attack(
    weak: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None
) -> httpx.Response:
    if body is None:
        return await weak.request(method, path)
    return await weak.request(method, path, json=body)


@pytest.mark.parametrize("action", list(KEY_ACTIONS))
async def test_weak_key_acting_on_an_all_scopes_key_is_refused(
    platform: RunningPlatform, pool: Any, tenant: Tenant, action: str
) -> None:
    directory = part(platform, "directory")
    # A second all-scopes key, minted as the bootstrap key is.
    created = await directory.create_api_key(
        tenant.account_id, "admin-2", list(ALL_SCOPES), actor=ADMIN
    )
    target = created.key_id
    if action == "unblock":  # so that unblocking would change something
        await directory.block_api_key(tenant.account_id, target, actor=ADMIN)
    before_key = data(await tenant.strong.get(f"/api-keys/{target}"))
    before_events = await events_of(platform, pool, target)
    method, suffix, body = KEY_ACTIONS[action]
    async with await client_with(platform, tenant.account_id, WEAK_ACCOUNT_SCOPES) as weak:
        answer = await attack(weak, method, f"/api-keys/{target}{suffix}", body)
    assert refused(answer), answer.text
    assert "secret_plain" not in answer.text
    assert await events_of(platform, pool, target) == before_events
    assert data(await tenant.strong.get(f"/api-keys/{target}")) == before_key


async def test_weak_key_cannot_rotate_the_bootstrap_key(
    platform: RunningPlatform, pool: Any
) -> None:
    before = await events_of(platform, pool, platform.api_key_id)
    async with await client_with(platform, platform.account_id, WEAK_ACCOUNT_SCOPES) as weak:
        answer = await weak.post(f"/api-keys/{platform.api_key_id}/rotate", json={})
    assert refused(answer), answer.text
    assert "secret_plain" not in answer.text
    assert await events_of(platform, pool, platform.api_key_id) == before


async def test_weak_key_still_manages_a_key_within_its_scopes(
    platform: RunningPlatform, tenant: Tenant
) -> None:
    created = await tenant.strong.post(
        "/api-keys", json={"name": "reader", "restrictions": {"scopes": ["api-keys:read"]}}
    )
    target = data(created)["id"]
    async with await client_with(platform, tenant.account_id, WEAK_ACCOUNT_SCOPES) as weak:
        rotated = data(await weak.post(f"/api-keys/{target}/rotate", json={}))
        assert rotated["secret_plain"]
        assert data(await weak.patch(f"/api-keys/{target}", json={"name": "r2"}))["name"] == "r2"
        assert (await weak.delete(f"/api-keys/{target}")).status_code == 204


async def test_widening_a_weak_key_to_scopes_the_caller_lacks_is_refused(
    platform: RunningPlatform, tenant: Tenant
) -> None:
    created = await tenant.strong.post(
        "/api-keys", json={"name": "reader", "restrictions": {"scopes": ["api-keys:read"]}}
    )
    target = data(created)["id"]
    async with await client_with(platform, tenant.account_id, WEAK_ACCOUNT_SCOPES) as weak:
        widened = {"restrictions": {"scopes": list(ALL_SCOPES)}}
        assert refused(await weak.patch(f"/api-keys/{target}", json=widened))


async def org_with_key(tenant: Tenant, scopes: list[str]) -> tuple[str, str, str]:
    """(issuer id, organization id, key id) of a new organization-level key."""
    issuer = data(await tenant.strong.post("/issuers", json={"name": f"i-{uuid.uuid4().hex[:6]}"}))
    orgs = f"/issuers/{issuer['id']}/organizations"
    org = data(await tenant.strong.post(orgs, json={"name": "Org"}))
    key = data(
        await tenant.strong.post(
            f"{orgs}/{org['id']}/api-keys",
            json={"name": "svc", "restrictions": {"scopes": scopes}},
        )
    )
    return issuer["id"], org["id"], key["id"]


# An organization-level key may hold Core API scopes next to the customer's own strings.
STRONG_ORG_KEY = ["issuers.users:write", "issuers.organizations:write", "projects:read"]


@pytest.mark.parametrize("action", list(KEY_ACTIONS))
async def test_weak_key_acting_on_a_stronger_organization_key_is_refused(
    platform: RunningPlatform, pool: Any, tenant: Tenant, action: str
) -> None:
    issuer_id, org_id, target = await org_with_key(tenant, STRONG_ORG_KEY)
    if action == "unblock":
        await part(platform, "directory").block_api_key(tenant.account_id, target, actor=ADMIN)
    before = await events_of(platform, pool, target)
    method, suffix, body = KEY_ACTIONS[action]
    org_path = f"/issuers/{issuer_id}/organizations/{org_id}/api-keys/{target}{suffix}"
    async with await client_with(platform, tenant.account_id, WEAK_ORG_SCOPES) as weak:
        assert refused(await attack(weak, method, org_path, body))
    # The account-level routes manage organization-level keys too (core-api.md 3.4).
    async with await client_with(platform, tenant.account_id, WEAK_ACCOUNT_SCOPES) as weak:
        assert refused(await attack(weak, method, f"/api-keys/{target}{suffix}", body))
    assert await events_of(platform, pool, target) == before


async def test_organization_key_with_free_form_scopes_stays_manageable(
    platform: RunningPlatform, tenant: Tenant
) -> None:
    issuer_id, org_id, target = await org_with_key(tenant, ["projects:read"])
    path = f"/issuers/{issuer_id}/organizations/{org_id}/api-keys/{target}"
    async with await client_with(platform, tenant.account_id, WEAK_ORG_SCOPES) as weak:
        assert data(await weak.post(f"{path}/rotate", json={}))["secret_plain"]
        assert (await weak.delete(path)).status_code == 204


async def personal_token(tenant: Tenant, scopes: list[str]) -> str:
    issuer = data(await tenant.strong.post("/issuers", json={"name": f"i-{uuid.uuid4().hex[:6]}"}))
    users = f"/issuers/{issuer['id']}/users"
    email = f"pat-{uuid.uuid4().hex[:8]}@example.com"
    user = data(await tenant.strong.post(users, json={"username_type": "email", "username": email}))
    body = {"name": "cli", "restrictions": {"scopes": scopes}}
    token = data(await tenant.strong.post(f"{users}/{user['id']}/tokens", json=body))
    return str(token["id"])


@pytest.mark.parametrize("action", ["revoke", "delete"])
async def test_weak_key_acting_on_a_stronger_personal_token_is_refused(
    platform: RunningPlatform, pool: Any, tenant: Tenant, action: str
) -> None:
    target = await personal_token(tenant, ["issuers.users:write", "tokens:read"])
    before = await events_of(platform, pool, target)
    async with await client_with(platform, tenant.account_id, WEAK_TOKEN_SCOPES) as weak:
        if action == "revoke":
            answer = await weak.post(f"/tokens/{target}/revoke", json={})
        else:
            answer = await weak.delete(f"/tokens/{target}")
    assert refused(answer), answer.text
    assert await events_of(platform, pool, target) == before
    assert data(await tenant.strong.get(f"/tokens/{target}"))["status"] == "active"


async def test_weak_key_still_revokes_a_personal_token_within_its_scopes(
    platform: RunningPlatform, tenant: Tenant
) -> None:
    target = await personal_token(tenant, ["tokens:write"])
    async with await client_with(platform, tenant.account_id, WEAK_TOKEN_SCOPES) as weak:
        assert data(await weak.post(f"/tokens/{target}/revoke", json={}))["status"] == "revoked"


async def signed_webhook(tenant: Tenant) -> dict[str, Any]:
    body = {"name": "hook", "url": "https://hooks.example.invalid/in",
            "auth": {"type": "signature"}, "events": ["user.created"]}  # fmt: skip
    return data(await tenant.strong.post("/webhooks", json=body))


# PATCH bodies that would issue a webhook secret (core-api.md 5.2: `webhooks:manage` "plus
# redelivery and secret regeneration"). A `webhooks:write` key once got a fresh signing secret
# by switching the type to `none` and back; adding a bearer token issued one as well.
SECRET_ISSUING_PATCHES = {
    "regenerate": [{"auth": {"regenerate_secret": True}}],
    "type-toggle": [{"auth": {"type": "none"}}, {"auth": {"type": "signature"}}],
    "add-bearer": [{"auth": {"type": "bearer+signature"}}],
}


@pytest.mark.parametrize("case", list(SECRET_ISSUING_PATCHES))
async def test_webhook_write_key_cannot_obtain_a_new_webhook_secret(
    platform: RunningPlatform, tenant: Tenant, case: str
) -> None:
    hook = await signed_webhook(tenant)
    *steps, last = SECRET_ISSUING_PATCHES[case]
    async with await client_with(platform, tenant.account_id, ["webhooks:write"]) as weak:
        for step in steps:  # allowed: they issue nothing
            assert "_plain" not in (await weak.patch(f"/webhooks/{hook['id']}", json=step)).text
        answer = await weak.patch(f"/webhooks/{hook['id']}", json=last)
    assert refused(answer), answer.text
    assert "_plain" not in answer.text
    after = data(await tenant.strong.get(f"/webhooks/{hook['id']}"))
    assert after["auth"]["type"] == (steps[-1]["auth"]["type"] if steps else "signature")
    async with await client_with(platform, tenant.account_id, ["webhooks:manage"]) as manager:
        issued = data(await manager.patch(f"/webhooks/{hook['id']}", json=last))
    assert any(k.endswith("_plain") for k in issued), issued
