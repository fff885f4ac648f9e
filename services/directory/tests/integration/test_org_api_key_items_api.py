"""Per-key routes of organization-level API keys below their organization (core-api.md 3.4, the
optional `I/organizations/{org_id}/api-keys/{key_id}…` aliases). The SDK has no calls for them
(contract 4.26 lists and creates only), so httpx drives them; the SDK creates the keys. The key is
the one aggregate of the account-level routes: the alias only adds that it belongs to this
organization of this issuer (404 otherwise)."""

from __future__ import annotations

import httpx
import pytest
from authpi_admin.errors import NotFoundError

from authpi.contracts.scopes import ALL_SCOPES, grants
from authpi.testing.plugin import eventually

# Public APIs only (tests that read the database or reach another account stay all-in-one):
# also run against the distributed run (platform testing plugin).
pytestmark = pytest.mark.sdk

KEYS_SCOPES = [
    "issuers.organizations.api-keys:read",
    "issuers.organizations.api-keys:write",
    "issuers.organizations.api-keys:delete",
]


@pytest.fixture
async def http(platform):
    auth = (platform.api_key_id, platform.api_key_secret)
    async with httpx.AsyncClient(base_url=platform.api_url, auth=auth, timeout=30) as client:
        yield client


def key_path(platform, issuer: str, org_id: str, key_id: str) -> str:
    return (f"/v1/accounts/{platform.account_id}/issuers/{issuer}/organizations/{org_id}"
            f"/api-keys/{key_id}")  # fmt: skip


async def org_with_key(admin, issuer: str, scopes: list[str] | None = None, name: str = "Org"):
    org = await admin.issuer(issuer).organizations.create({"name": name})
    key = (
        await admin.issuer(issuer)
        .organization(org.id)
        .api_keys.create({"name": "svc", "restrictions": {"scopes": scopes or ["projects:read"]}})
    )
    return org, key


async def authenticates(platform, key_id: str, secret: str) -> bool:
    async with httpx.AsyncClient(auth=(key_id, secret)) as client:
        return (await client.get(f"{platform.api_url}/v1/me")).status_code == 200


async def test_get_update_block_unblock_rotate_revoke_delete(
    platform, pool, kit, admin, issuer, http
):
    org, key = await org_with_key(admin, issuer)
    path = key_path(platform, issuer, org.id, key.id)
    got = await http.get(path)
    assert got.status_code == 200, got.text
    data = got.json()["data"]
    assert (data["id"], data["org_id"], data["issuer_id"]) == (key.id, org.id, issuer)
    assert got.headers["etag"] == f'"{data["created_at"]}"' and "secret_plain" not in data

    patched = await http.patch(path, json={"name": "renamed", "restrictions": {"scopes": [
        "projects:write", "billing:read"]}})  # fmt: skip
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["restrictions"]["scopes"] == ["projects:write", "billing:read"]
    assert patched.headers["etag"] == f'"{patched.json()["data"]["updated_at"]}"'
    before = await kit.count_events(platform, pool)
    same = await http.patch(path, json={"name": "renamed"})
    assert same.status_code == 200 and same.headers["etag"] == patched.headers["etag"]
    assert await kit.count_events(platform, pool) == before

    blocked = await http.post(f"{path}/block", json={"status_reason": "audit"})
    assert blocked.json()["data"]["status"] == "blocked"
    assert blocked.json()["data"]["status_reason"] == "audit"
    assert (await http.post(f"{path}/unblock")).json()["data"]["status"] == "active"

    rotated = await http.post(f"{path}/rotate")
    assert rotated.status_code == 200, rotated.text
    secret = rotated.json()["data"]["secret_plain"]
    assert secret != key.secret_plain and rotated.json()["data"]["id"] == key.id
    await eventually(lambda: authenticates(platform, key.id, secret))

    revoked = await http.post(f"{path}/revoke")
    assert revoked.json()["data"]["status"] == "revoked"
    assert (await http.post(f"{path}/unblock")).status_code == 409
    assert (await http.delete(path)).status_code == 204
    assert (await http.get(path)).status_code == 404
    assert await kit.events_of(platform, pool, key.id) == [
        "api-key.created", "api-key.updated", "api-key.blocked", "api-key.unblocked",
        "api-key.updated", "api-key.updated", "api-key.deleted",
    ]  # fmt: skip


ALIASES = [
    ("GET", "", None),
    ("PATCH", "", {"name": "taken"}),
    ("DELETE", "", None),
    ("POST", "/block", None),
    ("POST", "/unblock", None),
    ("POST", "/revoke", None),
    ("POST", "/rotate", None),
]


@pytest.mark.parametrize(("method", "suffix", "body"), ALIASES)
async def test_a_key_addressed_under_another_parent_is_not_found(
    platform, pool, kit, admin, issuer, http, method, suffix, body
):
    mine, key = await org_with_key(admin, issuer, name="Mine")
    other = await admin.issuer(issuer).organizations.create({"name": "Other"})
    elsewhere = await kit.new_issuer(admin)
    twin = await admin.issuer(elsewhere).organizations.create({"name": "Twin"})
    before = await kit.count_events(platform, pool)
    wrong = [
        key_path(platform, issuer, other.id, key.id),  # another organization
        key_path(platform, elsewhere, twin.id, key.id),  # another issuer
        key_path(platform, elsewhere, mine.id, key.id),  # the right org under the wrong issuer
        key_path(platform, issuer, mine.id, platform.api_key_id),  # an account-level key
        key_path(platform, issuer, mine.id, "key_" + "0" * 32),
        key_path(platform, issuer, mine.id, "key_%00"),
    ]
    for path in wrong:
        resp = await http.request(method, path + suffix, json=body)
        assert resp.status_code == 404, (path, resp.text)
        assert resp.json()["error"] == "not_found"
    assert await kit.count_events(platform, pool) == before
    assert (await admin.api_keys.get(key.id)).status == "active"


async def test_an_organization_key_manages_only_its_own_organization(
    platform, pool, kit, admin, issuer
):
    mine, manager = await org_with_key(admin, issuer, KEYS_SCOPES, name="Mine")
    other, theirs = await org_with_key(admin, issuer, name="Other")
    org_keys = admin.issuer(issuer).organization(mine.id).api_keys
    sibling = await org_keys.create({"name": "sibling", "restrictions": {}})
    before = await kit.count_events(platform, pool)
    async with httpx.AsyncClient(
        base_url=platform.api_url, auth=(manager.id, manager.secret_plain), timeout=30
    ) as http:
        own = key_path(platform, issuer, mine.id, sibling.id)
        foreign = key_path(platform, issuer, other.id, theirs.id)
        assert (await http.get(own)).status_code == 200
        for method, suffix, body in ALIASES:
            resp = await http.request(method, foreign + suffix, json=body)
            assert resp.status_code == 403, (method, suffix, resp.text)
        account_route = f"/v1/accounts/{platform.account_id}/api-keys/{sibling.id}"
        assert (await http.post(f"{account_route}/block")).status_code == 403
        assert await kit.count_events(platform, pool) == before
        assert (await http.post(f"{own}/block")).json()["data"]["status"] == "blocked"
        stronger = {"restrictions": {"scopes": ["issuers.organizations:write"]}}
        resp = await http.patch(own, json=stronger)
        assert resp.status_code == 403 and resp.json()["error"] == "insufficient_scope"
        assert (await http.delete(own)).status_code == 204
    assert (await admin.api_keys.get(theirs.id)).status == "active"


@pytest.mark.parametrize(
    ("scope", "method", "suffix"),
    [("issuers.organizations.api-keys:read", "GET", ""),
     ("issuers.organizations.api-keys:write", "PATCH", ""),
     ("issuers.organizations.api-keys:write", "POST", "/block"),
     ("issuers.organizations.api-keys:write", "POST", "/rotate"),
     ("issuers.organizations.api-keys:delete", "DELETE", "")],
)  # fmt: skip
async def test_a_key_lacking_exactly_the_scope_is_refused(
    platform, pool, kit, admin, issuer, scope, method, suffix
):
    org, key = await org_with_key(admin, issuer)
    weak = await kit.key_with(platform, [s for s in ALL_SCOPES if not grants([s], scope)])
    before = await kit.count_events(platform, pool)
    async with httpx.AsyncClient(base_url=platform.api_url, auth=(weak.key_id, weak.secret)) as h:
        body = {"name": "x"} if method == "PATCH" else None
        resp = await h.request(method, key_path(platform, issuer, org.id, key.id) + suffix,
                               json=body)  # fmt: skip
    assert resp.status_code == 403, resp.text
    assert resp.json()["error"] == "insufficient_scope" and scope in resp.text
    assert await kit.count_events(platform, pool) == before


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b'{"name": ', 400),
        (b"[]", 400),
        (b'{"name": ""}', 422),
        (b'{"expires_at": 1}', 422),
        (b'{"restrictions": {"ip_allowlist": ["not-an-ip"]}}', 422),
        (b'{"restrictions": {"scopes": "a"}}', 422),
        (b'{"status": "revoked"}', 422),
        (b'{"metadata": {"k": "' + b"v" * 9000 + b'"}}', 422),
    ],
)
async def test_bad_patch_bodies_are_refused_without_events(
    platform, pool, kit, admin, issuer, http, raw, status
):
    org, key = await org_with_key(admin, issuer)
    before = await kit.count_events(platform, pool)
    resp = await http.patch(
        key_path(platform, issuer, org.id, key.id),
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == status, resp.text
    assert await kit.count_events(platform, pool) == before


async def test_a_stale_if_match_is_412(platform, pool, kit, admin, issuer, http):
    org, key = await org_with_key(admin, issuer)
    path = key_path(platform, issuer, org.id, key.id)
    first = await http.get(path)
    await http.patch(path, json={"name": "moved on"})
    before = await kit.count_events(platform, pool)
    resp = await http.post(f"{path}/block", headers={"If-Match": first.headers["etag"]})
    assert resp.status_code == 412 and resp.json()["current_etag"] != first.headers["etag"]
    assert await kit.count_events(platform, pool) == before


async def test_keys_of_a_deleted_organization_are_gone_from_its_path(platform, admin, issuer, http):
    org, key = await org_with_key(admin, issuer)
    await admin.issuer(issuer).organizations.delete(org.id)
    assert (await http.get(key_path(platform, issuer, org.id, key.id))).status_code == 404
    # Deleting an organization revokes nothing (core-api.md 3.4): the account view still has it.
    assert (await admin.api_keys.get(key.id)).id == key.id


async def test_the_account_routes_keep_an_organization_keys_free_form_scopes(admin, issuer):
    _, key = await org_with_key(admin, issuer)
    updated = await admin.api_keys.update(key.id, {"restrictions": {"scopes": ["projects:write"]}})
    assert updated.restrictions["scopes"] == ["projects:write"]
    with pytest.raises(NotFoundError):
        await admin.api_keys.get("key_" + "f" * 32)
