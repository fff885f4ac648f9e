"""Organizations over the Core API (core-api.md 3.12) with the official SDK: CRUD, lifecycle
(suspend, reactivate, the crash-safe delete cascade), paging, filters, preconditions, refusals,
tenant isolation and scopes of every organization route family."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from authpi_admin.errors import (
    ForbiddenError,
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
)
from psycopg import sql

from authpi.directory.domain.commands.organization import DeleteOrganization, OrgRef
from authpi.directory.projections.organizations import OrganizationsView
from authpi.eventstore.replay import replay
from authpi.platform.testing.upstream import sso_config
from authpi.testing.plugin import eventually
from services.directory.tests.races import one_wins

# Public APIs only (tests that read the database or reach another account stay all-in-one):
# also run against the distributed run (platform testing plugin).
pytestmark = pytest.mark.sdk


def orgs_url(platform, issuer: str) -> str:
    return f"{platform.api_url}/v1/accounts/{platform.account_id}/issuers/{issuer}/organizations"


async def view_rows(platform, pool, table: str, org_id: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {}.{} WHERE org_id = %s").format(
        sql.Identifier(f"{platform.namespace}_directory"), sql.Identifier(table)
    )
    async with pool.connection() as conn:
        cur = await conn.execute(query, [org_id])
        row = await cur.fetchone()
        return int(row[0])


async def test_create_get_update_delete_round_trip(platform, pool, kit, admin, issuer):
    orgs = admin.issuer(issuer).organizations
    created = await orgs.create({
        "name": "Acme", "org_type": "business", "max_members": 100,
        "default_member_scopes": ["member"], "scopes": ["member", "owner"],
        "address": {"line1": "1 Main St", "city": "Springfield", "country": "USA"},
        "contact": {"email": "admin@acme.test"}, "metadata": {"billing_id": "cus_123"},
    })  # fmt: skip
    assert created.id.startswith("org_") and created.issuer_id == issuer
    assert created.status == "active" and created.org_type == "business"
    assert created.address is not None and created.address.country == "USA"
    assert created.stats == {"n_members": 0} and created.updated_at is None

    fetched = await admin.issuer(issuer).organization(created.id).get()
    assert fetched == created and fetched._etag == f'"{created.created_at}"'

    updated = await orgs.update(
        created.id, {"name": "Acme Corp", "metadata": {"tier": "gold"}}, if_match=fetched._etag
    )
    assert updated.name == "Acme Corp"
    assert updated.metadata.model_dump() == {
        "billing_id": "cus_123",
        "tier": "gold",
    }  # merged (2.6)
    assert (await orgs.get(created.id)).name == "Acme Corp"  # read after write

    await orgs.delete(created.id)
    with pytest.raises(NotFoundError):
        await orgs.get(created.id)
    listed = [o.id async for o in orgs.list_all()]
    assert created.id not in listed
    tombstones = [o async for o in orgs.list_all(status="deleted")]
    assert [(o.id, o.status, o.name) for o in tombstones] == [(created.id, "deleted", None)]
    assert await kit.events_of(platform, pool, created.id) == [
        "organization.created", "organization.updated", "organization.updated",
        "organization.deleted",
    ]  # fmt: skip


async def test_list_pages_newest_first_across_pages(admin, issuer):
    orgs = admin.issuer(issuer).organizations
    ids = [(await orgs.create({"name": f"Org {i}"})).id for i in range(5)]
    first = await orgs.list(limit=2)
    assert len(first.data) == 2 and first.has_more and first.next_cursor
    assert [o.id async for o in orgs.list_all(limit=2)] == list(reversed(ids))


async def test_suspend_and_reactivate_are_status_events(platform, pool, kit, admin, issuer):
    orgs = admin.issuer(issuer).organizations
    org = await orgs.create({"name": "Suspendable"})
    suspended = await orgs.update(
        org.id, {"status": "suspended", "status_reason": "Invoice overdue", "status_by": "billing"}
    )
    assert (suspended.status, suspended.status_reason, suspended.status_by) == (
        "suspended", "Invoice overdue", "billing",
    )  # fmt: skip
    assert [o.id async for o in orgs.list_all(status="suspended")] == [org.id]
    again = await orgs.update(org.id, {"status": "suspended"})
    assert again.updated_at == suspended.updated_at  # nothing changed, no event
    active = await orgs.update(org.id, {"status": "active"})
    assert active.status == "active"
    assert await kit.events_of(platform, pool, org.id) == [
        "organization.created", "organization.suspended", "organization.reactivated",
    ]  # fmt: skip


async def test_boolean_filters_select_matching_organizations(platform, admin, issuer, kit):
    orgs = admin.issuer(issuer).organizations
    sso = await orgs.create({"name": "SSO", "sso": sso_config(sso_only=True)})
    mfa = await orgs.create({"name": "MFA", "security": {"mfa_required": True}})
    closed = await orgs.create({"name": "Closed", "invitation_enabled": False})
    assert [o.id async for o in orgs.list_all(sso_enabled="true")] == [sso.id]
    assert [o.id async for o in orgs.list_all(sso_only="true")] == [sso.id]
    assert [o.id async for o in orgs.list_all(mfa_required="true")] == [mfa.id]
    assert [o.id async for o in orgs.list_all(invitation_enabled="false")] == [closed.id]
    async with httpx.AsyncClient(auth=kit.bootstrap_key(platform)) as http:
        for query in ({"sso_enabled": "yes"}, {"status": "deleting"}, {"limit": "0"}):
            resp = await http.get(orgs_url(platform, issuer), params=query)
            assert resp.status_code == 400, (query, resp.text)


async def test_concurrent_patches_with_one_etag_one_wins(admin, issuer):
    orgs = admin.issuer(issuer).organizations
    org = await orgs.create({"name": "Race"})
    winner, _ = await one_wins(
        orgs.update(org.id, {"name": "A"}, if_match=org._etag),
        orgs.update(org.id, {"name": "B"}, if_match=org._etag),
    )
    assert (await orgs.get(org.id)).name == winner.name


async def test_stale_if_match_on_delete_is_412_and_keeps_the_organization(admin, issuer):
    orgs = admin.issuer(issuer).organizations
    org = await orgs.create({"name": "Keep"})
    await orgs.update(org.id, {"name": "Keep 2"})
    with pytest.raises(PreconditionFailedError) as caught:
        await orgs.delete(org.id, if_match=org._etag)
    assert caught.value.current_etag
    assert (await orgs.get(org.id)).status == "active"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"[1, 2]", 400),
        (b'{"name": 5}', 422),
        (b"{}", 422),
        (b'{"name": ""}', 422),
        (b'{"name": "x", "org_type": "castle"}', 422),
        (b'{"name": "x", "max_members": 0}', 422),
        (b'{"name": "x", "max_members": 99999999999999}', 422),
        (b'{"name": "x", "address": {"city": "Paris"}}', 422),
        (b'{"name": "x", "address": {"country": "FR"}}', 422),
        (b'{"name": "x", "logo_url": "javascript:alert(1)"}', 422),
        (b'{"name": "x\\u0000y"}', 422),
        (b'{"name": "x", "metadata": {"bad key!": 1}}', 422),
        (b'{"name": "x", "by_user_id": "usr_nobody"}', 422),
    ],
)
async def test_malformed_create_is_refused_without_an_event(
    platform, pool, kit, issuer, body, status
):
    before = await kit.count_events(platform, pool)
    async with httpx.AsyncClient(auth=kit.bootstrap_key(platform)) as http:
        resp = await http.post(
            orgs_url(platform, issuer), content=body, headers={"Content-Type": "application/json"}
        )
    assert resp.status_code == status, resp.text
    assert await kit.count_events(platform, pool) == before


async def test_oversized_metadata_and_bad_patch_are_422(platform, pool, kit, admin, issuer):
    org = await admin.issuer(issuer).organizations.create({"name": "Strict"})
    before = await kit.count_events(platform, pool)
    async with httpx.AsyncClient(auth=kit.bootstrap_key(platform)) as http:
        url = f"{orgs_url(platform, issuer)}/{org.id}"
        big = {"metadata": {f"k{i}": "v" * 200 for i in range(49)}}
        assert (await http.patch(url, json=big)).status_code == 422
        assert (await http.patch(url, json={"status": "deleting"})).status_code == 422
        assert (await http.patch(url, json={"status_reason": "x" * 1001})).status_code == 422
        assert (await http.patch(url, json={"name": None})).status_code == 422
    assert await kit.count_events(platform, pool) == before


async def test_unicode_names_round_trip(admin, issuer):
    orgs = admin.issuer(issuer).organizations
    org = await orgs.create({"name": "Société Générale 株式会社 🚀"})
    assert (await orgs.get(org.id)).name == "Société Générale 株式会社 🚀"


async def test_unknown_issuer_and_bad_ids_are_404(platform, admin, issuer, kit):
    with pytest.raises(NotFoundError):
        await admin.issuer("i_" + "0" * 25).organizations.create({"name": "Nowhere"})
    with pytest.raises(NotFoundError):
        await admin.issuer("i_" + "0" * 25).organizations.list()
    with pytest.raises(NotFoundError):
        await admin.issuer(issuer).organizations.get("org_" + "0" * 25)
    async with httpx.AsyncClient(auth=kit.bootstrap_key(platform)) as http:
        resp = await http.get(f"{orgs_url(platform, issuer)}/org%00x")
        assert resp.status_code == 404


async def test_interrupted_delete_cascade_is_resumed(platform, pool, kit, admin, issuer):
    orgs = admin.issuer(issuer).organizations
    handler = kit.part(platform, "organizations")
    org = await orgs.create({"name": "Doomed"})
    user_id = await kit.new_user(admin, issuer)
    await admin.issuer(issuer).organization(org.id).members.create({"member_id": user_id})
    await admin.issuer(issuer).organization(org.id).groups.create({"name": "Admins"})

    # The process dies after the first step of the cascade committed.
    ref = OrgRef(org_id=org.id, account_id=platform.account_id, issuer_id=issuer)
    await handler._run(DeleteOrganization(ref=ref, now=handler.rt.clock.now_ms()), ref, kit.ADMIN)

    with pytest.raises(NotFoundError):
        await orgs.get(org.id)
    with pytest.raises(NotFoundError):
        await admin.issuer(issuer).organization(org.id).members.list()
    assert org.id not in [o.id async for o in orgs.list_all()]
    assert await view_rows(platform, pool, "members_view", org.id) == 1  # not yet cascaded

    assert org.id in await handler.resume_deletions()
    assert await view_rows(platform, pool, "members_view", org.id) == 0
    assert await view_rows(platform, pool, "groups_view", org.id) == 0
    types = await kit.events_of(platform, pool, org.id)
    assert types[-2:] == ["organization.updated", "organization.deleted"]
    assert org.id not in await handler.resume_deletions()  # nothing left to resume


async def test_repeated_delete_finishes_an_interrupted_cascade(platform, pool, kit, admin, issuer):
    orgs = admin.issuer(issuer).organizations
    handler = kit.part(platform, "organizations")
    org = await orgs.create({"name": "Doomed twice"})
    ref = OrgRef(org_id=org.id, account_id=platform.account_id, issuer_id=issuer)
    await handler._run(DeleteOrganization(ref=ref, now=handler.rt.clock.now_ms()), ref, kit.ADMIN)

    await orgs.delete(org.id)  # the client retries its DELETE: 204, and the cascade completes

    assert (await kit.events_of(platform, pool, org.id))[-1] == "organization.deleted"
    with pytest.raises(NotFoundError):
        await orgs.delete(org.id)


@pytest.mark.in_process  # another account: made in-process
async def test_other_account_key_is_refused_on_every_route_family(platform, kit, admin, issuer):
    directory = kit.part(platform, "directory")
    other_account = await directory.create_account("Other", actor=kit.ADMIN)
    other_key = await directory.create_api_key(
        other_account, "other", ["issuers.organizations:read"], actor=kit.ADMIN
    )
    org = await admin.issuer(issuer).organizations.create({"name": "Mine"})
    base = orgs_url(platform, issuer)
    urls = [base, f"{base}/{org.id}", f"{base}/{org.id}/members", f"{base}/{org.id}/groups",
            f"{base}/{org.id}/api-keys"]  # fmt: skip
    async with httpx.AsyncClient(auth=(other_key.key_id, other_key.secret)) as http:
        for url in urls:
            assert (await http.get(url)).status_code == 403, url
        assert (await http.post(base, json={"name": "Intruder"})).status_code == 403
        assert (await http.patch(f"{base}/{org.id}", json={"name": "x"})).status_code == 403
        assert (await http.delete(f"{base}/{org.id}")).status_code == 403
    assert (await admin.issuer(issuer).organizations.get(org.id)).name == "Mine"


@pytest.mark.parametrize(
    ("scope", "method", "suffix"),
    [
        ("issuers.organizations:read", "GET", ""),
        ("issuers.organizations:write", "POST", ""),
        ("issuers.organizations:read", "GET", "/{org}"),
        ("issuers.organizations:write", "PATCH", "/{org}"),
        ("issuers.organizations:delete", "DELETE", "/{org}"),
        ("issuers.organizations.members:read", "GET", "/{org}/members"),
        ("issuers.organizations.members:write", "POST", "/{org}/members"),
        ("issuers.organizations.groups:read", "GET", "/{org}/groups"),
        ("issuers.organizations.groups:write", "POST", "/{org}/groups"),
        ("issuers.organizations.api-keys:read", "GET", "/{org}/api-keys"),
        ("issuers.organizations.api-keys:write", "POST", "/{org}/api-keys"),
    ],
)
async def test_key_lacking_the_scope_is_403_insufficient_scope(
    platform, kit, admin, issuer, scope, method, suffix
):
    org = await admin.issuer(issuer).organizations.create({"name": "Scoped"})
    missing = [scope]
    if scope.endswith(":read"):  # a write scope implies its read (core-api.md 5.1)
        missing.append(scope.removesuffix(":read") + ":write")
    key = await kit.all_scopes_but(platform, *missing)
    url = orgs_url(platform, issuer) + suffix.format(org=org.id)
    async with httpx.AsyncClient(auth=(key.key_id, key.secret)) as http:
        resp = await http.request(method, url, json={"name": "n", "member_id": "usr_x",
                                                     "restrictions": {}})  # fmt: skip
    assert resp.status_code == 403, resp.text
    assert resp.json()["error"] == "insufficient_scope"


async def test_sdk_maps_refusals_to_its_error_classes(platform, kit, admin, issuer):
    orgs = admin.issuer(issuer).organizations
    with pytest.raises(ValidationError):
        await orgs.create({"name": "x", "max_members": -1})
    key = await kit.key_with(platform, ["issuers.organizations:read"])
    limited = kit.admin_for(platform, key.key_id, key.secret)
    try:
        with pytest.raises(ForbiddenError):
            await limited.issuer(issuer).organizations.create({"name": "nope"})
    finally:
        await limited.close()


async def test_projection_rebuilds_to_the_same_rows(platform, pool, kit, admin, issuer):
    orgs = admin.issuer(issuer).organizations
    kept, gone = await orgs.create({"name": "Kept"}), await orgs.create({"name": "Gone"})
    scope = admin.issuer(issuer).organization(kept.id)
    group = await scope.groups.create({"name": "Team"})
    await scope.members.create(
        {"member_id": await kit.new_user(admin, issuer), "groups": [group.id]}
    )
    await scope.groups.delete(group.id)
    await orgs.update(kept.id, {"status": "suspended"})
    await orgs.delete(gone.id)
    handler = kit.part(platform, "organizations")
    tables = ("organizations_view", "members_view", "groups_view")

    async def snapshot() -> list[list[tuple]]:
        """This issuer's rows only: other suites' background work (delete cascades, agent
        membership drops) keeps changing other issuers' rows meanwhile."""
        rows = []
        async with pool.connection() as conn:
            for table in tables:
                query = sql.SQL(
                    "SELECT to_jsonb(t)::text FROM {}.{} t WHERE t.issuer_id = %s ORDER BY 1"
                ).format(kit.schema_of(platform), sql.Identifier(table))
                rows.append(await (await conn.execute(query, [issuer])).fetchall())
        return rows

    async def settled() -> list[list[tuple]] | None:
        """The same rows twice in a row: the deletion's cascade has finished."""
        first = await snapshot()
        await asyncio.sleep(0.2)
        return first if await snapshot() == first else None

    before = await eventually(settled)
    view = OrganizationsView(handler.store.schema)
    await replay(platform.dsn, view, {"directory": f"{platform.namespace}_directory"})
    assert await snapshot() == before
