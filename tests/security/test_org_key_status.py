"""Keys of a suspended or deleted organization (core-api.md 7, open point 11).

Organization-level API keys kept authenticating on the Core API, and `/keyinfo` kept answering
for them, after their organization was suspended or deleted. They are now refused with 401
`unauthorized_client` while the organization is suspended, work again once it is reactivated,
and stay refused once it is deleted. The gateway learns organization statuses from
`organization.*` events into its own projection; keys' own statuses never change, and
account-level keys are unaffected."""

from __future__ import annotations

import base64
import uuid

import httpx
import pytest
from authpi_admin import AuthPIAdmin

from authpi.testing.plugin import eventually


def basic(key_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key_id}:{secret}".encode()).decode()}


@pytest.fixture
async def admin(platform):
    client = AuthPIAdmin(
        api_key=(platform.api_key_id, platform.api_key_secret),
        account_id=platform.account_id,
        base_url=platform.api_url,
        retries=False,
    )
    yield client
    await client.close()


@pytest.fixture
async def org_key(platform, admin):
    """(issuer id, org id, Basic headers of an organization-level key), once the key works."""
    issuer = await admin.issuers.create({"name": f"org-status-{uuid.uuid4().hex[:6]}"})
    org = await admin.issuer(issuer.id).organizations.create({"name": "Customer"})
    key = (
        await admin.issuer(issuer.id)
        .organization(org.id)
        .api_keys.create({"name": "svc", "restrictions": {"scopes": ["orders:read"]}})
    )
    headers = basic(key.id, key.secret_plain)
    await eventually(lambda: answers(platform, issuer.id, headers, 200))
    return issuer.id, org.id, headers


async def statuses(platform, issuer_id: str, headers: dict[str, str]) -> tuple[int, int]:
    """(Core API `GET /v1/me`, IdP `GET /{issuer}/keyinfo`) statuses for these credentials."""
    async with httpx.AsyncClient(timeout=10) as http:
        me = await http.get(f"{platform.api_url}/v1/me", headers=headers)
        info = await http.get(f"{platform.idp_url}/{issuer_id}/keyinfo", headers=headers)
    if me.status_code == 401:
        assert me.json()["error"] == "unauthorized_client"
    if info.status_code == 401:
        assert info.json()["error"] == "unauthorized_client"
        assert info.headers["www-authenticate"].startswith("Basic ")
    if info.status_code == 200:
        assert info.json()["status"] == "active"
    return me.status_code, info.status_code


async def answers(platform, issuer_id: str, headers: dict[str, str], status: int) -> bool:
    return await statuses(platform, issuer_id, headers) == (status, status)


async def test_suspension_refuses_the_keys_and_reactivation_restores_them(platform, admin, org_key):
    issuer_id, org_id, headers = org_key
    orgs = admin.issuer(issuer_id).organizations
    await orgs.update(org_id, {"status": "suspended", "status_reason": "unpaid"})
    # Read-your-writes: the very next request after the write's 2xx is refused.
    assert await answers(platform, issuer_id, headers, 401)
    # The account's own key is unaffected.
    owner = basic(platform.api_key_id, platform.api_key_secret)
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(f"{platform.api_url}/v1/me", headers=owner)).status_code == 200

    await orgs.update(org_id, {"status": "active"})
    assert await answers(platform, issuer_id, headers, 200)


async def test_deletion_refuses_the_keys(platform, admin, org_key):
    issuer_id, org_id, headers = org_key
    await admin.issuer(issuer_id).organizations.delete(org_id)
    assert await answers(platform, issuer_id, headers, 401)


async def test_the_gateway_view_survives_a_reload(platform, org_key, admin):
    """A process that starts after the suspension loads it from the gateway's own view."""
    from authpi.gateway.caches.organizations import OrganizationStatuses
    from authpi.messaging.follower import Feed

    issuer_id, org_id, headers = org_key
    await admin.issuer(issuer_id).organizations.update(org_id, {"status": "suspended"})
    await eventually(lambda: answers(platform, issuer_id, headers, 401))
    rt = platform.handle.rt
    fresh = OrganizationStatuses(Feed(rt.pool, rt.js, rt.namespace, rt.schema("gateway")))

    async def loaded() -> bool:
        async with rt.pool.connection() as conn, conn.transaction():
            await fresh.load(conn)
        return fresh.status(org_id) == "suspended"

    await eventually(loaded)
