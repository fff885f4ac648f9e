"""Accounts over real HTTP (core-api.md 3.2, 2.3, 2.6; contract 4.2 and `Account`), driven by the
official admin SDK and by httpx for malformed input: list, get, update with If-Match, the owner
rule, scopes, tenant isolation and bad input that never 500s nor appends an event."""

from __future__ import annotations

import httpx
import pytest
from authpi_admin.errors import ForbiddenError, ValidationError

from authpi.contracts.scopes import ALL_SCOPES, grants
from authpi.platform.testing.tenants import basic
from services.directory.tests.races import one_wins
from services.directory.tests.tenant import ADMIN, Tenant, new_tenant

PLATFORM_ISSUER = "i_authpi0000000000000000000"


@pytest.fixture
async def tenant(platform, directory) -> Tenant:
    return await new_tenant(platform, directory, "Acme")


async def test_list_returns_exactly_the_callers_account(tenant):
    async with tenant.sdk() as admin:
        page = await admin.accounts.list()
        everything = [a async for a in admin.accounts.list_all(limit=1)]
    assert [a.id for a in page.data] == [tenant.account_id] == [a.id for a in everything]
    assert page.has_more is False and page.next_cursor is None


async def test_get_returns_the_account_object(tenant):
    async with tenant.http() as http:
        resp = await http.get(tenant.path)
    assert resp.status_code == 200
    data = resp.json()["data"]
    assert data["balance_\u03bcusd"] == 0 and "balance_\u00b5usd" not in data
    assert resp.headers["etag"] == f'"{data["created_at"]}"'
    async with tenant.sdk() as admin:
        account = await admin.accounts.get(tenant.account_id)
    org = account.organization
    assert org.id == "org_" + tenant.account_id.removeprefix("acc_")
    assert (org.issuer_id, org.status, org.name, org.org_type) == (
        PLATFORM_ISSUER,
        "active",
        "Acme",
        "business",
    )
    # Billing is not enforced on this deployment (OP-9), and a new account has no credit yet.
    assert (account.billing_mode, account.balance_μusd, account.credits_run_out) == (
        "ungated",
        0,
        True,
    )
    assert (
        account.domains == []
        and account.payment_methods == []
        and account.metadata.model_dump() == {}
    )
    assert account.updated_at is None and account._etag == resp.headers["etag"]


async def test_sdk_update_merges_metadata_and_is_read_back_at_once(tenant):
    async with tenant.sdk() as admin:
        first = await admin.accounts.update(
            tenant.account_id,
            {"name": "Acme Ltd", "description": "**hi**", "logo_url": "https://x.test/l.png",
             "metadata": {"crm": "c-1", "tier": "gold"}},
        )  # fmt: skip
        assert first.organization.name == "Acme Ltd"
        assert first.organization.description == "**hi**"
        assert first.metadata.model_dump() == {"crm": "c-1", "tier": "gold"}
        assert first._etag == f'"{first.updated_at}"'
        second = await admin.accounts.update(
            tenant.account_id,
            {"metadata": {"tier": None, "region": "eu"}, "logo_url": None},
            if_match=first._etag,
        )
        assert second.metadata.model_dump() == {"crm": "c-1", "region": "eu"}
        assert second.organization.logo_url is None and second.updated_at > first.updated_at
        read = await admin.accounts.get(tenant.account_id)
        assert read == second and read._etag == second._etag
        cleared = await admin.accounts.update(tenant.account_id, {"metadata": None})
        assert cleared.metadata.model_dump() == {}


async def test_owner_must_be_a_user_of_the_account(platform, pool, kit):
    async with httpx.AsyncClient(
        base_url=platform.api_url, headers=basic(platform.api_key_id, platform.api_key_secret)
    ) as http:
        path = f"/v1/accounts/{platform.account_id}"
        owner = (await http.get(path)).json()["data"]["owner_user_id"]
        assert owner.startswith("usr_")
        before = await kit.count_events(platform, pool)
        resp = await http.patch(path, json={"owner_user_id": "usr_" + "0" * 25})
        assert resp.status_code == 422
        assert resp.json()["fields"][0]["field"] == "owner_user_id"
        same = await http.patch(path, json={"owner_user_id": owner})
        assert same.status_code == 200 and same.json()["data"]["owner_user_id"] == owner
    assert await kit.count_events(platform, pool) == before


async def test_two_patches_racing_on_one_etag_one_wins_one_412(tenant):
    async with tenant.sdk() as admin:
        account = await admin.accounts.get(tenant.account_id)
        winner, loser = await one_wins(
            admin.accounts.update(tenant.account_id, {"name": "Left"}, if_match=account._etag),
            admin.accounts.update(tenant.account_id, {"name": "Right"}, if_match=account._etag),
        )
        assert loser.current_etag == winner._etag
        assert (await admin.accounts.get(tenant.account_id)).organization.name == (
            winner.organization.name
        )


def lacking(scope: str) -> list[str]:
    return [s for s in ALL_SCOPES if not grants([s], scope)]


@pytest.mark.parametrize(
    ("scope", "method", "suffix"),
    [("account:read", "GET", ""), ("account:read", "GET", "/{id}"),
     ("account:write", "PATCH", "/{id}")],
)  # fmt: skip
async def test_a_key_lacking_exactly_the_scope_is_refused(
    tenant, directory, platform, pool, scope, method, suffix, kit
):
    weak = await directory.create_api_key(tenant.account_id, "weak", lacking(scope), actor=ADMIN)
    before = await kit.count_events(platform, pool)
    body = {"name": "Nope"} if method == "PATCH" else None
    async with tenant.http((weak.key_id, weak.secret)) as http:
        resp = await http.request(
            method, "/v1/accounts" + suffix.format(id=tenant.account_id), json=body
        )
    assert resp.status_code == 403, resp.text
    assert resp.json()["error"] == "insufficient_scope" and scope in resp.text
    assert await kit.count_events(platform, pool) == before


async def test_sdk_sees_forbidden_for_another_account(tenant, platform, directory, pool, kit):
    other = await new_tenant(platform, directory, "Other")
    before = await kit.count_events(platform, pool)
    async with tenant.sdk() as admin:
        with pytest.raises(ForbiddenError):
            await admin.accounts.get(other.account_id)
        with pytest.raises(ForbiddenError):
            await admin.accounts.update(other.account_id, {"name": "Taken"})
    async with tenant.http() as http:
        assert (await http.get(f"/v1/accounts/acc_{'z' * 25}")).status_code == 404
        assert (await http.patch(f"/v1/accounts/acc_{'z' * 25}", json={})).status_code == 404
    assert await kit.count_events(platform, pool) == before


BAD_PATCHES = [
    (b'{"name": ', 400),
    (b"[]", 400),
    (b'{"name": 5}', 422),
    (b'{"name": ""}', 422),
    (b'{"name": null}', 422),
    (b'{"logo_url": "not a url"}', 422),
    (b'{"logo_url": "http://[::1"}', 422),
    (b'{"owner_user_id": 7}', 422),
    (b'{"metadata": []}', 422),
    (b'{"metadata": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}}', 422),
    (b'{"description": "nul \\u0000"}', 422),
    (b'{"metadata": {"k\\u0000": 1}}', 422),
]


@pytest.mark.parametrize(("raw", "status"), BAD_PATCHES)
async def test_bad_patch_bodies_are_refused_without_events(
    tenant, platform, pool, raw, status, kit
):
    before = await kit.count_events(platform, pool)
    resp = await tenant.send_raw("PATCH", tenant.path, raw)
    assert resp.status_code == status, resp.text
    assert await kit.count_events(platform, pool) == before


async def test_oversized_metadata_is_a_validation_error(tenant, platform, pool, kit):
    before = await kit.count_events(platform, pool)
    async with tenant.sdk() as admin:
        with pytest.raises(ValidationError) as caught:
            await admin.accounts.update(tenant.account_id, {"metadata": {"x": "y" * 9000}})
    assert caught.value.status_code == 422 and caught.value.fields[0]["field"] == "metadata"
    assert await kit.count_events(platform, pool) == before


async def test_unknown_fields_are_ignored_and_unicode_names_round_trip(tenant, platform, pool, kit):
    async with tenant.sdk() as admin:
        updated = await admin.accounts.update(
            tenant.account_id, {"name": "Société 株式会社 🚀", "plan": "gold"}
        )
        assert updated.organization.name == "Société 株式会社 🚀"
        before = await kit.count_events(platform, pool)
        same = await admin.accounts.update(tenant.account_id, {"name": "Société 株式会社 🚀"})
    assert same._etag == updated._etag
    assert await kit.count_events(platform, pool) == before


@pytest.mark.parametrize(
    "account_id",
    ["acc_nope", "a" * 300, "acc_%C3%A9", "acc_%00"],
)
async def test_bad_account_ids_are_404(tenant, account_id):
    async with tenant.http() as http:
        for method in ("GET", "PATCH"):
            body = {"name": "n"} if method == "PATCH" else None
            resp = await http.request(method, f"/v1/accounts/{account_id}", json=body)
            assert resp.status_code == 404, (method, resp.text)
