"""Organization members and groups over the Core API (core-api.md 3.13, 3.14) with the official
SDK: add/list/get/update/remove, group CRUD, paging, filters, preconditions and refusals."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from authpi_admin.errors import (
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
)
from psycopg import sql

# Public APIs only (tests that read the database or reach another account stay all-in-one):
# also run against the distributed run (platform testing plugin).
pytestmark = pytest.mark.sdk


@pytest.fixture
async def org(admin, issuer):
    return await admin.issuer(issuer).organizations.create(
        {"name": "Team", "default_member_scopes": ["member"],
         "scopes": ["member", "owner", "projects:write"]}
    )  # fmt: skip


async def test_add_get_update_remove_member(platform, pool, kit, admin, issuer, org):
    members = admin.issuer(issuer).organization(org.id).members
    user_id = await kit.new_user(admin, issuer)
    added = await members.create({"member_id": user_id, "user_title": "Engineer"})
    assert (added.org_id, added.member_id, added.member_type) == (org.id, user_id, "user")
    assert added.scopes == ["member"] and added.status == "active" and added.groups == []
    assert (await admin.issuer(issuer).organizations.get(org.id)).stats == {"n_members": 1}

    updated = await members.update(
        user_id, {"scopes": ["owner"], "status": "suspended"}, if_match=added._etag
    )
    assert updated.scopes == ["owner"] and updated.status == "suspended"
    with pytest.raises(PreconditionFailedError):
        await members.update(user_id, {"user_title": "x"}, if_match=added._etag)

    await members.delete(user_id)
    assert [m async for m in members.list_all()] == []
    assert await kit.events_of(platform, pool, org.id) == [
        "organization.created", "organization.membership.created",
        "organization.membership.updated", "organization.membership.deleted",
    ]  # fmt: skip
    query = sql.SQL(
        "SELECT meta->'subject' FROM {}.events WHERE stream_id = %s"
        " AND type = 'organization.membership.created'"
    ).format(kit.schema_of(platform))
    async with pool.connection() as conn:
        (subject,) = await (await conn.execute(query, [org.id])).fetchone()
    assert subject == {"org_id": org.id, "member_id": user_id, "member_type": "user"}


async def test_get_single_member(platform, admin, issuer, org, kit):
    user_id = await kit.new_user(admin, issuer)
    await admin.issuer(issuer).organization(org.id).members.create({"member_id": user_id})
    url = (f"{platform.api_url}/v1/accounts/{platform.account_id}/issuers/{issuer}"
           f"/organizations/{org.id}/members/{user_id}")  # fmt: skip
    async with httpx.AsyncClient(auth=kit.bootstrap_key(platform)) as http:
        resp = await http.get(url)
        assert resp.status_code == 200 and resp.json()["data"]["member_id"] == user_id
        assert resp.headers["ETag"]
        assert (await http.get(url[: -len(user_id)] + "usr_none")).status_code == 404


async def test_members_page_and_filter(admin, issuer, org, kit):
    members = admin.issuer(issuer).organization(org.id).members
    ids = [await kit.new_user(admin, issuer) for _ in range(3)]
    for user_id in ids:
        await members.create({"member_id": user_id})
    await members.update(ids[0], {"scopes": ["member", "projects:write"]})
    await members.update(ids[1], {"status": "suspended"})
    assert sorted([m.member_id async for m in members.list_all(limit=2)]) == sorted(ids)
    assert [m.member_id async for m in members.list_all(scope="projects:write")] == [ids[0]]
    assert [m.member_id async for m in members.list_all(status="suspended")] == [ids[1]]


async def test_member_refusals(platform, pool, kit, admin, issuer):
    orgs = admin.issuer(issuer).organizations
    small = await orgs.create({"name": "Small", "max_members": 1})
    members = admin.issuer(issuer).organization(small.id).members
    first, second = await kit.new_user(admin, issuer), await kit.new_user(admin, issuer)
    await members.create({"member_id": first})
    stranger = await kit.new_user(admin, await kit.new_issuer(admin))
    before = await kit.count_events(platform, pool)
    with pytest.raises(ConflictError):
        await members.create({"member_id": first})
    with pytest.raises(ValidationError):  # max_members reached
        await members.create({"member_id": second})
    with pytest.raises(NotFoundError):
        await members.create({"member_id": "usr_" + "0" * 25})
    with pytest.raises(NotFoundError):  # no such agent in this issuer
        await members.create({"member_id": "agt_" + "0" * 32})
    with pytest.raises(NotFoundError):
        await members.delete(second)
    with pytest.raises(ValidationError):
        await members.update(first, {"groups": ["grp_missing"]})
    with pytest.raises(NotFoundError):  # a user of another issuer
        await members.create({"member_id": stranger})
    assert await kit.count_events(platform, pool) == before


async def test_concurrent_member_patches_with_one_etag_one_wins(admin, issuer, org, kit):
    members = admin.issuer(issuer).organization(org.id).members
    user_id = await kit.new_user(admin, issuer)
    added = await members.create({"member_id": user_id})
    results = await asyncio.gather(
        members.update(user_id, {"user_title": "A"}, if_match=added._etag),
        members.update(user_id, {"user_title": "B"}, if_match=added._etag),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == [
        "OrganizationMembership", "PreconditionFailedError",
    ]  # fmt: skip


async def test_group_crud_and_delete_leaves_memberships(platform, pool, kit, admin, issuer, org):
    scope = admin.issuer(issuer).organization(org.id)
    group = await scope.groups.create({"name": "Admins", "scopes": ["owner"]})
    assert group.id.startswith("grp_") and group.org_id == org.id and group.description is None
    assert (await scope.groups.get(group.id)) == group
    renamed = await scope.groups.update(group.id, {"name": "Owners"}, if_match=group._etag)
    assert renamed.name == "Owners"
    with pytest.raises(PreconditionFailedError):
        await scope.groups.delete(group.id, if_match=group._etag)

    user_id = await kit.new_user(admin, issuer)
    member = await scope.members.create({"member_id": user_id, "groups": [group.id]})
    assert member.groups == [group.id]
    await scope.groups.delete(group.id)
    with pytest.raises(NotFoundError):
        await scope.groups.get(group.id)
    assert [m.groups async for m in scope.members.list_all()] == [[]]
    assert (await kit.events_of(platform, pool, org.id))[-1] == "organization.group.deleted"


async def test_groups_page_across_pages(admin, issuer, org):
    groups = admin.issuer(issuer).organization(org.id).groups
    ids = [(await groups.create({"name": f"G{i}"})).id for i in range(5)]
    assert [g.id async for g in groups.list_all(limit=2)] == list(reversed(ids))


@pytest.mark.parametrize(
    "body",
    [b'{"name": ""}', b'{"name": 3}', b'{"description": "x"}', b'{"name": "x", "scopes": "a"}'],
)
async def test_malformed_group_is_422_without_an_event(platform, pool, kit, issuer, org, body):
    before = await kit.count_events(platform, pool)
    url = (f"{platform.api_url}/v1/accounts/{platform.account_id}/issuers/{issuer}"
           f"/organizations/{org.id}/groups")  # fmt: skip
    async with httpx.AsyncClient(auth=kit.bootstrap_key(platform)) as http:
        resp = await http.post(url, content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 422, resp.text
    assert await kit.count_events(platform, pool) == before


async def test_members_of_a_suspended_organization_are_still_managed(admin, issuer, org, kit):
    await admin.issuer(issuer).organizations.update(org.id, {"status": "suspended"})
    members = admin.issuer(issuer).organization(org.id).members
    user_id = await kit.new_user(admin, issuer)
    assert (await members.create({"member_id": user_id})).status == "active"


async def test_create_by_user_makes_it_a_member_with_every_scope(admin, issuer, kit):
    user_id = await kit.new_user(admin, issuer)
    org = await admin.issuer(issuer).organizations.create(
        {"name": "Founded", "scopes": ["owner", "member"], "by_user_id": user_id}
    )
    assert org.stats == {"n_members": 1}
    members = [m async for m in admin.issuer(issuer).organization(org.id).members.list_all()]
    assert [(m.member_id, m.scopes) for m in members] == [(user_id, ["owner", "member"])]
