"""Organization-level API keys (core-api.md 3.4, contract 4.26) with the official SDK: create
(secret shown once), list with filters and paging; the key acts as its organization only."""

from __future__ import annotations

import httpx
import pytest
from authpi_admin.errors import NotFoundError
from psycopg import sql

from authpi.crypto.ids import sha256_hex

# Public APIs only (tests that read the database or reach another account stay all-in-one):
# also run against the distributed run (platform testing plugin).
pytestmark = pytest.mark.sdk


def keys_url(platform, issuer: str, org_id: str) -> str:
    return (f"{platform.api_url}/v1/accounts/{platform.account_id}/issuers/{issuer}"
            f"/organizations/{org_id}/api-keys")  # fmt: skip


async def test_create_and_list_organization_keys(platform, pool, kit, admin, issuer):
    org = await admin.issuer(issuer).organizations.create({"name": "Customer"})
    keys = admin.issuer(issuer).organization(org.id).api_keys
    created = await keys.create(
        {"name": "svc", "restrictions": {"scopes": ["projects:read"]}, "tags": ["ci"]}
    )
    assert created.id.startswith("key_") and created.org_id == org.id
    assert created.issuer_id == issuer and created.secret_plain
    assert created.secret["hint"] == created.secret_plain[-8:]
    assert created.restrictions == {"scopes": ["projects:read"], "ip_allowlist": []}
    assert await kit.places_holding(platform, pool, created.secret_plain) == []
    assert await kit.events_of(platform, pool, created.id) == ["api-key.created"]

    for i in range(3):
        await keys.create({"name": f"extra {i}", "restrictions": {}})
    listed = [k async for k in keys.list_all(limit=2)]
    assert len(listed) == 4 and listed[-1].id == created.id
    assert [k.id async for k in keys.list_all(q="SVC")] == [created.id]
    assert [k.id async for k in keys.list_all(access="read")] == [created.id]
    assert len([k async for k in keys.list_all(access="none")]) == 3
    assert [k.id async for k in keys.list_all(readiness="ready")] == [created.id]


async def test_organization_key_acts_as_its_organization_only(platform, kit, admin, issuer):
    orgs = admin.issuer(issuer).organizations
    mine, other = await orgs.create({"name": "Mine"}), await orgs.create({"name": "Other"})
    key = (
        await admin.issuer(issuer)
        .organization(mine.id)
        .api_keys.create(
            {"name": "svc", "restrictions": {"scopes": ["issuers.organizations.api-keys:read"]}}
        )
    )
    auth = (key.id, key.secret_plain)
    async with httpx.AsyncClient(auth=auth) as http:
        me = (await http.get(f"{platform.api_url}/v1/me")).json()["data"]
        assert me["accounts"] == [] and me["organizations"][0]["org_id"] == mine.id
        assert (await http.get(keys_url(platform, issuer, mine.id))).status_code == 200
        assert (await http.get(keys_url(platform, issuer, other.id))).status_code == 403


async def test_a_key_cannot_grant_core_scopes_it_lacks(platform, pool, kit, admin, issuer):
    org = await admin.issuer(issuer).organizations.create({"name": "Escalation"})
    key = (
        await admin.issuer(issuer)
        .organization(org.id)
        .api_keys.create(
            {"name": "minter", "restrictions": {"scopes": ["issuers.organizations.api-keys:write"]}}
        )
    )
    before = await kit.count_events(platform, pool)
    async with httpx.AsyncClient(auth=(key.id, key.secret_plain)) as http:
        url = keys_url(platform, issuer, org.id)
        stronger = {"name": "x", "restrictions": {"scopes": ["issuers.organizations:write"]}}
        resp = await http.post(url, json=stronger)
        assert resp.status_code == 403 and resp.json()["error"] == "insufficient_scope"
        assert await kit.count_events(platform, pool) == before
        custom = {"name": "y", "restrictions": {"scopes": ["projects:read"]}}
        assert (await http.post(url, json=custom)).status_code == 201


async def test_supplied_secret_and_hint_are_kept(platform, pool, kit, admin, issuer):
    org = await admin.issuer(issuer).organizations.create({"name": "Migrating"})
    secret = "s" * 40
    created = (
        await admin.issuer(issuer)
        .organization(org.id)
        .api_keys.create(
            {"name": "old", "restrictions": {}, "secret": secret, "secret_hint": "legacy"}
        )
    )
    assert created.secret_plain == secret and created.secret["hint"] == "legacy"
    query = sql.SQL("SELECT secret_sha256 FROM {}.api_keys_view WHERE id = %s").format(
        kit.schema_of(platform)
    )
    async with pool.connection() as conn:
        row = await (await conn.execute(query, [created.id])).fetchone()
    assert row == (sha256_hex(secret),)
    assert await kit.places_holding(platform, pool, secret) == []


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x"},
        {"name": "", "restrictions": {}},
        {"name": "x", "restrictions": {"ip_allowlist": ["not-an-ip"]}},
        {"name": "x", "restrictions": {}, "expires_at": 1},
        {"name": "x", "restrictions": {}, "expires_at": 2**70},
        {"name": "x", "restrictions": {}, "secret": "short"},
        {"name": "x", "restrictions": {"scopes": "a"}},
    ],
)
async def test_invalid_key_requests_are_422_without_an_event(
    platform, pool, kit, admin, issuer, body
):
    org = await admin.issuer(issuer).organizations.create({"name": "Strict"})
    before = await kit.count_events(platform, pool)
    async with httpx.AsyncClient(auth=(platform.api_key_id, platform.api_key_secret)) as http:
        resp = await http.post(keys_url(platform, issuer, org.id), json=body)
    assert resp.status_code == 422, resp.text
    assert await kit.count_events(platform, pool) == before


async def test_keys_of_a_deleted_organization_are_not_listed_or_created(admin, issuer):
    org = await admin.issuer(issuer).organizations.create({"name": "Gone"})
    keys = admin.issuer(issuer).organization(org.id).api_keys
    await keys.create({"name": "svc", "restrictions": {}})
    await admin.issuer(issuer).organizations.delete(org.id)
    with pytest.raises(NotFoundError):
        await keys.list()
    with pytest.raises(NotFoundError):
        await keys.create({"name": "late", "restrictions": {}})
