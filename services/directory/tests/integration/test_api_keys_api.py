"""Account API keys over real HTTP, driven by the official admin SDK where it has the call and by
httpx for malformed input (core-api.md 2.3, 2.4, 2.6, 3.4, 5): CRUD, auto-pagination, filters,
SDK error classes, If-Match races, Idempotency-Key, tenant isolation, scopes, bad input, and the
gateway's key cache following every lifecycle event within a second."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from authpi_admin.errors import (
    AuthenticationError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
)
from psycopg import sql

from authpi.contracts.scopes import ALL_SCOPES, grants
from authpi.directory.handlers.api_keys import KeyRestrictions
from authpi.platform.testing.tenants import basic
from authpi.testing.plugin import eventually
from services.directory.tests.races import one_wins
from services.directory.tests.tenant import ADMIN, Tenant, new_tenant, platform_tenant

# Public APIs only (tests that read the database or reach another account stay all-in-one):
# also run against the distributed run (platform testing plugin).
pytestmark = pytest.mark.sdk

DAY_MS = 24 * 3600 * 1000


class KeysTenant(Tenant):
    @property
    def keys_path(self) -> str:
        return f"{self.path}/api-keys"


@pytest.fixture
def tenant(platform) -> KeysTenant:
    """The platform's account with its bootstrap key: for tests that look at the keys they make
    only (public APIs, so they also run against the distributed run)."""
    return platform_tenant(platform, KeysTenant)


@pytest.fixture
async def own_tenant(platform, directory) -> KeysTenant:
    """An account of its own, made in-process, for tests that list every key of the account."""
    return await new_tenant(platform, directory, kind=KeysTenant)


async def count_events(platform, pool, event_type: str, account_id: str | None = None) -> int:
    query = sql.SQL(
        "SELECT count(*) FROM {}.events WHERE type = %s"
        " AND (%s::text IS NULL OR meta->>'account_id' = %s)"
    ).format(sql.Identifier(f"{platform.namespace}_directory"))
    async with pool.connection() as conn:
        cur = await conn.execute(query, [event_type, account_id, account_id])
        return (await cur.fetchone())[0]


async def me_status(platform, key_id: str, secret: str) -> int:
    async with httpx.AsyncClient(base_url=platform.api_url) as http:
        return (await http.get("/v1/me", headers=basic(key_id, secret))).status_code


def now_ms() -> int:
    return int(time.time() * 1000)


# CRUD through the SDK, read-after-write


async def test_sdk_create_get_update_delete_round_trip(tenant):
    expires = now_ms() + 30 * DAY_MS
    async with tenant.sdk() as admin:
        created = await admin.api_keys.create({
            "name": "ci-deploy",
            "description": "deploys",
            "tags": ["ci"],
            "restrictions": {"scopes": ["issuers:read"], "ip_allowlist": ["203.0.113.0/24"]},
            "expires_at": expires,
            "metadata": {"team": "infra"},
        })  # fmt: skip
        assert created.id.startswith("key_") and created.type == "api_key"
        assert created.secret == {"algorithm": "sha256", "hint": created.secret_plain[-8:]}
        assert created.restrictions == {
            "scopes": ["issuers:read"],
            "ip_allowlist": ["203.0.113.0/24"],
        }
        assert (created.status, created.expires_at, created.metadata.model_dump()) == (
            "active",
            expires,
            {"team": "infra"},
        )
        assert created._etag == f'"{created.created_at}"'

        got = await admin.api_keys.get(created.id)
        assert got.name == "ci-deploy" and got.tags == ["ci"] and got.description == "deploys"
        assert not hasattr(got, "secret_plain")

        updated = await admin.api_keys.update(
            created.id,
            {"name": "ci", "tags": ["ci", "prod"], "metadata": {"team": None, "cost": "7"},
             "restrictions": {"scopes": []}, "description": None},
            if_match=got._etag,
        )  # fmt: skip
        assert (updated.name, updated.tags, updated.metadata.model_dump()) == (
            "ci",
            ["ci", "prod"],
            {"cost": "7"},
        )
        assert updated.restrictions["scopes"] == []
        assert updated.restrictions["ip_allowlist"] == ["203.0.113.0/24"]
        assert updated.description is None and updated.updated_at > created.created_at
        assert updated._etag == f'"{updated.updated_at}"'

        again = await admin.api_keys.get(created.id)
        assert again == updated

        await admin.api_keys.delete(created.id, if_match=updated._etag)
        with pytest.raises(NotFoundError):
            await admin.api_keys.get(created.id)
        ids = [k.id async for k in admin.api_keys.list_all()]
        assert created.id not in ids


async def test_create_is_visible_at_once_in_get_and_list(tenant):
    async with tenant.sdk() as admin:
        for i in range(3):
            key = await admin.api_keys.create({"name": f"raw-{i}", "restrictions": {}})
            assert (await admin.api_keys.get(key.id)).id == key.id
            page = await admin.api_keys.list(limit=1)
            assert page.data[0].id == key.id
            blocked = await admin.api_keys.block(key.id)
            assert blocked.status == "blocked"
            assert (await admin.api_keys.get(key.id)).status == "blocked"


async def test_auto_pagination_walks_every_page_newest_first(own_tenant, directory):
    tenant = own_tenant
    made = [
        (await directory.create_api_key(tenant.account_id, f"p{i}", [], actor=ADMIN)).key_id
        for i in range(7)
    ]
    async with tenant.sdk() as admin:
        first = await admin.api_keys.list(limit=3)
        assert first.has_more and first.next_cursor and len(first.data) == 3
        items = [k async for k in admin.api_keys.list_all(limit=3)]
    ids = [k.id for k in items]
    assert len(ids) == len(set(ids)) == 8  # the tenant's admin key and the seven
    assert set(made) | {tenant.key_id} == set(ids)
    order = [(k.created_at, k.id) for k in items]
    assert order == sorted(order, reverse=True)
    assert all(k.secret_hint and k.type == "api_key" for k in items)


async def test_list_filters_q_status_access_readiness(own_tenant, directory, platform):
    tenant = own_tenant
    acc = tenant.account_id

    async def make(name, scopes, restrictions=None):
        return (
            await directory.create_api_key(
                acc, name, scopes, actor=ADMIN, restrictions=restrictions
            )
        ).key_id

    reader = await make("Alpha Reader", ["issuers:read", "events:read"])
    writer = await make("beta writer", ["issuers:read", "webhooks:manage"])
    empty = await make("gamma empty", [])
    soon = await make("delta soon", ["issuers:read"], KeyRestrictions(expires_at=now_ms() + DAY_MS))
    gone = await make("epsilon gone", ["issuers:read"], KeyRestrictions(expires_at=now_ms() - 1))
    blocked = await make("zeta blocked", ["issuers:read"])
    revoked = await make("eta revoked", ["issuers:read"])
    await directory.block_api_key(acc, blocked, actor=ADMIN)
    await directory.revoke_api_key(acc, revoked, actor=ADMIN)

    async with tenant.sdk() as admin:

        async def ids(**filters) -> set[str]:
            return {k.id async for k in admin.api_keys.list_all(limit=2, **filters)}

        assert await ids(q="ALPHA") == {reader}
        assert await ids(q="e", status="blocked") == {blocked}
        assert await ids(status="revoked") == {revoked}
        assert await ids(status="expired") == {gone}
        assert await ids(status="suspended") == set()
        assert await ids(access="none") == {empty}
        assert reader in await ids(access="read") and writer not in await ids(access="read")
        assert writer in await ids(access="write") and tenant.key_id in await ids(access="write")
        ready = await ids(readiness="ready")
        assert reader in ready and writer in ready
        assert {empty, soon, gone, blocked, revoked} <= await ids(readiness="attention")
        assert not ready & {empty, soon, gone, blocked, revoked}
        listed = {k.id: k async for k in admin.api_keys.list_all()}
        assert listed[gone].status == "expired"


@pytest.mark.parametrize(
    "params",
    [{"status": "sleeping"}, {"access": "all"}, {"readiness": "soon"}, {"limit": 0}],
)
async def test_unknown_filter_values_are_400(tenant, params):
    async with tenant.http() as http:
        resp = await http.get(tenant.keys_path, params=params)
    assert resp.status_code == 400, resp.text
    assert resp.json()["fields"][0]["field"] == next(iter(params))


# The SDK's error classes


async def test_sdk_error_classes_for_each_status(tenant, platform, kit):
    async with tenant.sdk() as admin:
        with pytest.raises(ValidationError) as bad:
            await admin.api_keys.list(limit=500)
        assert bad.value.status_code == 400
        with pytest.raises(ValidationError) as unknown:
            await admin.api_keys.create({"name": "x", "restrictions": {"scopes": ["nope:read"]}})
        assert unknown.value.status_code == 422
        assert unknown.value.fields[0]["field"] == "restrictions.scopes.0"
        with pytest.raises(NotFoundError):
            await admin.api_keys.get("key_" + "0" * 32)
        key = await admin.api_keys.create({"name": "lifecycle", "restrictions": {}})
        await admin.api_keys.revoke(key.id, {"status_reason": "leaked"})
        with pytest.raises(ConflictError):
            await admin.api_keys.unblock(key.id)
        with pytest.raises(PreconditionFailedError) as stale:
            await admin.api_keys.update(key.id, {"name": "late"}, if_match='"1"')
        current = await admin.api_keys.get(key.id)
        assert stale.value.current_etag == current._etag
    async with tenant.sdk((tenant.key_id, "wrong-secret")) as admin:
        with pytest.raises(AuthenticationError):
            await admin.api_keys.list()
    reader = await kit.key_with(platform, ["account:read"])
    async with tenant.sdk((reader.key_id, reader.secret)) as admin:
        with pytest.raises(ForbiddenError) as refused:
            await admin.api_keys.list()
    assert refused.value.error == "insufficient_scope"


async def test_two_patches_racing_on_one_etag_one_wins_one_412(tenant):
    async with tenant.sdk() as admin:
        key = await admin.api_keys.create({"name": "race", "restrictions": {}})
        winner, _ = await one_wins(
            admin.api_keys.update(key.id, {"name": "left"}, if_match=key._etag),
            admin.api_keys.update(key.id, {"name": "right"}, if_match=key._etag),
        )
        assert (await admin.api_keys.get(key.id)).name == winner.name


# Idempotency-Key (core-api.md 2.4)


async def test_twenty_concurrent_creates_with_one_key_make_one_api_key(tenant, pool, platform):
    body = {"name": "idem-twenty", "restrictions": {"scopes": ["issuers:read"]}}
    headers = {"Idempotency-Key": "create-twenty"}
    before = await count_events(platform, pool, "api-key.created", tenant.account_id)
    async with tenant.http() as http:
        responses = await asyncio.gather(
            *(http.post(tenant.keys_path, json=body, headers=headers) for _ in range(20))
        )
        assert {r.status_code for r in responses} <= {201, 409}
        winners = [r for r in responses if r.status_code == 201]
        assert len({r.content for r in winners}) == 1
        assert await count_events(platform, pool, "api-key.created", tenant.account_id) == (
            before + 1
        )
        replay = await http.post(tenant.keys_path, json=body, headers=headers)
        if not winners:  # every one of the 20 met the first one in flight
            replay = await http.post(tenant.keys_path, json=body, headers=headers)
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    if winners:
        assert replay.content == winners[0].content
        assert replay.headers["etag"] == winners[0].headers["etag"]
    assert replay.json()["data"]["secret_plain"]
    assert await count_events(platform, pool, "api-key.created", tenant.account_id) == before + 1


# Tenant isolation: account A's credentials on account B's paths


def key_routes(keys_path: str, key_id: str) -> list[tuple[str, str, dict | None]]:
    item = f"{keys_path}/{key_id}"
    return [
        ("GET", keys_path, None),
        ("POST", keys_path, {"name": "x", "restrictions": {}}),
        ("GET", item, None),
        ("PATCH", item, {"name": "x"}),
        ("DELETE", item, None),
        ("POST", f"{item}/block", None),
        ("POST", f"{item}/unblock", None),
        ("POST", f"{item}/revoke", None),
        ("POST", f"{item}/rotate", None),
    ]


async def test_other_accounts_paths_are_403_and_their_keys_404(
    tenant, platform, directory, pool, kit
):
    other = await new_tenant(platform, directory, "other", kind=KeysTenant)
    before = await kit.count_events(platform, pool)
    async with tenant.http() as http:
        for method, path, body in key_routes(other.keys_path, other.key_id):
            resp = await http.request(method, path, json=body)
            assert resp.status_code == 403, (method, path, resp.text)
            assert resp.json()["error"] == "access_denied"
        # The other account's key addressed below this account's own path: no such key here.
        for method, path, body in key_routes(tenant.keys_path, other.key_id)[2:]:
            resp = await http.request(method, path, json=body)
            assert resp.status_code == 404, (method, path, resp.text)
        unknown = f"/v1/accounts/acc_{'z' * 25}/api-keys"
        assert (await http.get(unknown)).status_code == 404
    assert await kit.count_events(platform, pool) == before
    assert await me_status(platform, other.key_id, other.secret) == 200


# Scopes (core-api.md 5.2)

SCOPED_ROUTES = [
    ("api-keys:read", "GET", ""),
    ("api-keys:read", "GET", "/{key}"),
    ("api-keys:write", "POST", ""),
    ("api-keys:write", "PATCH", "/{key}"),
    ("api-keys:write", "POST", "/{key}/block"),
    ("api-keys:write", "POST", "/{key}/unblock"),
    ("api-keys:write", "POST", "/{key}/revoke"),
    ("api-keys:manage", "POST", "/{key}/rotate"),
    ("api-keys:delete", "DELETE", "/{key}"),
]


def lacking(scope: str) -> list[str]:
    """Every catalogue scope except those that would grant `scope`."""
    return [s for s in ALL_SCOPES if not grants([s], scope)]


@pytest.mark.parametrize(("scope", "method", "suffix"), SCOPED_ROUTES)
async def test_a_key_lacking_exactly_the_scope_is_refused(
    tenant, directory, platform, pool, scope, method, suffix, kit
):
    target = await directory.create_api_key(tenant.account_id, "target", [], actor=ADMIN)
    weak = await directory.create_api_key(tenant.account_id, "weak", lacking(scope), actor=ADMIN)
    path = tenant.keys_path + suffix.format(key=target.key_id)
    body = {"name": "x", "restrictions": {}} if method in ("POST", "PATCH") else None
    before = await kit.count_events(platform, pool)
    async with tenant.http((weak.key_id, weak.secret)) as http:
        resp = await http.request(method, path, json=body if suffix in ("", "/{key}") else None)
    assert resp.status_code == 403, resp.text
    assert resp.json()["error"] == "insufficient_scope"
    assert scope in resp.json()["error_description"]
    assert await kit.count_events(platform, pool) == before


async def test_a_caller_cannot_grant_scopes_it_does_not_hold(
    tenant, directory, platform, pool, kit
):
    creator = await directory.create_api_key(
        tenant.account_id, "creator", ["api-keys:write", "issuers:read"], actor=ADMIN
    )
    before = await kit.count_events(platform, pool)
    async with tenant.sdk((creator.key_id, creator.secret)) as admin:
        with pytest.raises(ForbiddenError) as refused:
            await admin.api_keys.create(
                {"name": "up", "restrictions": {"scopes": ["issuers:write"]}}
            )
        assert "issuers:write" in refused.value.error_description
        ok = await admin.api_keys.create(
            {"name": "down", "restrictions": {"scopes": ["issuers:read"]}}
        )
        assert ok.restrictions["scopes"] == ["issuers:read"]
        with pytest.raises(ForbiddenError):
            await admin.api_keys.update(ok.id, {"restrictions": {"scopes": ["webhooks:read"]}})
    assert await kit.count_events(platform, pool) == before + 1


# Bad input never 500s and never appends


BAD_CREATES = [
    (b'{"name": ', 400),
    (b'["name"]', 400),
    (b'{"name": 5, "restrictions": {}}', 422),
    (b'{"name": "x"}', 422),
    (b'{"name": "", "restrictions": {}}', 422),
    (b'{"name": "x", "restrictions": {"scopes": "issuers:read"}}', 422),
    (b'{"name": "x", "restrictions": {"ip_allowlist": ["10.0.0.0/33"]}}', 422),
    (b'{"name": "x", "restrictions": {"ip_allowlist": ["not-an-ip"]}}', 422),
    (b'{"name": "x", "restrictions": {}, "expires_at": 1}', 422),
    (b'{"name": "x", "restrictions": {}, "expires_at": 1e300}', 422),
    (b'{"name": "x", "restrictions": {}, "expires_at": 99999999999999999999999}', 422),
    (b'{"name": "nul\\u0000", "restrictions": {}}', 422),
    (b'{"name": "lone \\ud800", "restrictions": {}}', 400),
    (b'{"name": "x", "restrictions": {}, "metadata": {"k": "\\u0000"}}', 422),
    (b'{"name": "x", "restrictions": {}, "metadata": {"bad key!": 1}}', 422),
    (b'{"name": "x", "restrictions": {}, "tags": [1]}', 422),
    (b'{"name": "x", "restrictions": {}, "secret": "short"}', 422),
    (b'{"name": "' + b"n" * 101 + b'", "restrictions": {}}', 422),
]


@pytest.mark.parametrize(("raw", "status"), BAD_CREATES)
async def test_bad_create_bodies_are_refused_without_events(
    tenant, platform, pool, raw, status, kit
):
    before = await kit.count_events(platform, pool)
    resp = await tenant.send_raw("POST", tenant.keys_path, raw)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"] == "invalid_request"
    assert await kit.count_events(platform, pool) == before


async def test_oversized_metadata_is_422(tenant, platform, pool, kit):
    before = await kit.count_events(platform, pool)
    body = {"name": "big", "restrictions": {}, "metadata": {"blob": "x" * 9000}}
    async with tenant.http() as http:
        resp = await http.post(tenant.keys_path, json=body)
        assert resp.status_code == 422
        assert resp.json()["fields"][0]["field"] == "metadata"
        key = (await http.post(tenant.keys_path, json={"name": "m", "restrictions": {}})).json()
        many = {"metadata": {f"k{i}": i for i in range(30)}}
        assert (await http.patch(f"{tenant.keys_path}/{key['data']['id']}", json=many)).is_success
        more = {"metadata": {f"j{i}": i for i in range(30)}}  # 60 keys once merged
        resp = await http.patch(f"{tenant.keys_path}/{key['data']['id']}", json=more)
    assert resp.status_code == 422
    assert await kit.count_events(platform, pool) == before + 2


async def test_unknown_fields_are_ignored_and_unicode_round_trips(tenant):
    name = "clé 🔑 ключ 鍵"
    async with tenant.http() as http:
        resp = await http.post(
            tenant.keys_path, json={"name": name, "restrictions": {"x": 1}, "colour": "red"}
        )
        assert resp.status_code == 201, resp.text
        assert "colour" not in resp.json()["data"]
        key_id = resp.json()["data"]["id"]
        got = (await http.get(f"{tenant.keys_path}/{key_id}")).json()["data"]
    assert got["name"] == name


@pytest.mark.parametrize(
    "key_id", ["key_nope", "x" * 300, "k%C3%A9y", "key_%00", "key_'; DROP TABLE x;--"]
)
async def test_bad_key_ids_are_404(tenant, key_id):
    async with tenant.http() as http:
        for method in ("GET", "PATCH", "DELETE"):
            body = {"name": "n"} if method == "PATCH" else None
            resp = await http.request(method, f"{tenant.keys_path}/{key_id}", json=body)
            assert resp.status_code in (400, 404), (method, resp.text)
        resp = await http.post(f"{tenant.keys_path}/{key_id}/rotate")
        assert resp.status_code in (400, 404)


@pytest.mark.parametrize(
    "body",
    [
        {"status": "revoked"},
        {"name": 7},
        {"restrictions": {"scopes": ["nope"]}},
        {"restrictions": {"ip_allowlist": ["300.1.1.1"]}},
        {"expires_at": 5},
        {"tags": "a"},
        {"status_reason": "r" * 1001, "status": "blocked"},
    ],
)
async def test_bad_patch_bodies_are_422_without_events(tenant, platform, pool, body, kit):
    async with tenant.http() as http:
        key = (await http.post(tenant.keys_path, json={"name": "p", "restrictions": {}})).json()
        before = await kit.count_events(platform, pool)
        resp = await http.patch(f"{tenant.keys_path}/{key['data']['id']}", json=body)
    assert resp.status_code == 422, resp.text
    assert await kit.count_events(platform, pool) == before


async def test_a_patch_that_changes_nothing_appends_nothing(tenant, platform, pool, kit):
    async with tenant.sdk() as admin:
        key = await admin.api_keys.create({"name": "same", "restrictions": {"scopes": []}})
        before = await kit.count_events(platform, pool)
        same = await admin.api_keys.update(
            key.id, {"name": "same", "restrictions": {"scopes": []}, "status": "active"}
        )
    assert same._etag == key._etag
    assert await kit.count_events(platform, pool) == before


# The gateway follows every lifecycle event (revoked/blocked/deleted stop within a second)


async def refused_within_a_second(platform, key_id: str, secret: str, status: int = 401) -> None:
    async def refused() -> bool:
        return await me_status(platform, key_id, secret) == status

    await eventually(refused, timeout=1.0, interval=0.02)


@pytest.mark.parametrize("action", ["block", "revoke", "delete", "patch-block", "expire"])
async def test_a_key_stops_authenticating_within_a_second(tenant, platform, action):
    async with tenant.sdk() as admin:
        key = await admin.api_keys.create({"name": action, "restrictions": {}})
        assert await me_status(platform, key.id, key.secret_plain) == 200
        match action:
            case "block":
                await admin.api_keys.block(key.id, {"status_reason": "test"})
            case "revoke":
                await admin.api_keys.revoke(key.id)
            case "delete":
                await admin.api_keys.delete(key.id)
            case "patch-block":
                await admin.api_keys.update(key.id, {"status": "blocked"})
            case "expire":
                await admin.api_keys.update(key.id, {"expires_at": now_ms() + 300})
    await refused_within_a_second(platform, key.id, key.secret_plain)


@pytest.mark.sdk(quick=True)
async def test_unblock_through_patch_and_scope_edits_reach_the_gateway(tenant, platform):
    async with tenant.sdk() as admin:
        key = await admin.api_keys.create(
            {"name": "edit", "restrictions": {"scopes": ["account:read"]}}
        )
        path = f"/v1/accounts/{tenant.account_id}"
        creds = basic(key.id, key.secret_plain)
        async with httpx.AsyncClient(base_url=platform.api_url, headers=creds) as http:
            assert (await http.get(path)).status_code == 200
            await admin.api_keys.update(key.id, {"restrictions": {"scopes": []}})

            async def scope_gone() -> bool:
                return (await http.get(path)).status_code == 403

            await eventually(scope_gone, timeout=1.0, interval=0.02)
            await admin.api_keys.update(key.id, {"status": "blocked"})
            await refused_within_a_second(platform, key.id, key.secret_plain)
            await admin.api_keys.update(key.id, {"status": "active"})
            await refused_within_a_second(platform, key.id, key.secret_plain, status=200)
            await admin.api_keys.update(
                key.id, {"restrictions": {"ip_allowlist": ["2001:db8::/32"]}}
            )
            await refused_within_a_second(platform, key.id, key.secret_plain, status=403)
            v6 = {"X-Forwarded-For": "2001:db8::1"}
            assert (await http.get("/v1/me", headers=v6)).status_code == 200


async def test_rotation_returns_a_new_secret_and_keeps_the_old_one_in_grace(tenant, platform):
    async with tenant.sdk() as admin:
        key = await admin.api_keys.create({"name": "rot", "restrictions": {}})
        rotated = await admin.api_keys.rotate(key.id)
        assert rotated.secret_plain != key.secret_plain
        listed = [k async for k in admin.api_keys.list_all(q="rot")]
        assert listed[0].secret_hint == rotated.secret_plain[-8:]
        assert listed[0].last_rotated_at is not None
    await refused_within_a_second(platform, key.id, rotated.secret_plain, status=200)
    assert await me_status(platform, key.id, key.secret_plain) == 200


async def test_ip_allowlist_v4_and_v6_through_the_api(tenant, platform):
    body = {"name": "net", "restrictions": {"ip_allowlist": ["203.0.113.0/24", "2001:db8::/32"]}}
    async with tenant.http() as http:
        created = (await http.post(tenant.keys_path, json=body)).json()["data"]
    creds = basic(created["id"], created["secret_plain"])
    async with httpx.AsyncClient(base_url=platform.api_url, headers=creds) as http:
        assert (await http.get("/v1/me")).status_code == 403
        for ip in ("203.0.113.7", "2001:db8::5"):
            assert (await http.get("/v1/me", headers={"X-Forwarded-For": ip})).status_code == 200
        outside = {"X-Forwarded-For": "198.51.100.1"}
        assert (await http.get("/v1/me", headers=outside)).status_code == 403


async def test_caller_supplied_secret_authenticates(tenant, platform):
    secret = "s" * 20 + "migrated-secret-0123456789"
    async with tenant.sdk() as admin:
        key = await admin.api_keys.create(
            {"name": "migrated", "restrictions": {}, "secret": secret, "secret_hint": "0123"}
        )
    assert key.secret_plain == secret and key.secret["hint"] == "0123"
    assert await me_status(platform, key.id, secret) == 200


async def test_block_and_revoke_record_their_optional_reason(tenant, platform, pool, kit):
    async with tenant.sdk() as admin:
        key = await admin.api_keys.create({"name": "why", "restrictions": {}})
        blocked = await admin.api_keys.block(key.id, {"status_reason": "audit", "status_by": "ops"})
        assert (blocked.status, blocked.status_reason, blocked.status_by) == (
            "blocked",
            "audit",
            "ops",
        )
        assert blocked.status_at == blocked.updated_at
        before = await kit.count_events(platform, pool)
        async with tenant.http() as http:
            bad = await http.post(
                f"{tenant.keys_path}/{key.id}/revoke", json={"status_reason": ["no"]}
            )
        assert bad.status_code == 422 and await kit.count_events(platform, pool) == before
        revoked = await admin.api_keys.revoke(key.id)
        assert revoked.status == "revoked" and revoked._etag == f'"{revoked.updated_at}"'
