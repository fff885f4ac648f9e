"""Issuers and their auth methods over real HTTP (core-api.md 3.7, contract 4.8, 4.16): the SDK's
CRUD and auto-pagination, settings with token lifetimes and signing algorithms in the events,
filters, SDK error classes, If-Match races, tenant isolation, scopes, and malformed input that
is refused without a 500 and without an event."""

from __future__ import annotations

import base64

import pytest
from authpi_admin import AuthPIAdmin
from authpi_admin.errors import (
    AuthenticationError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
)

from authpi.contracts.scopes import ALL_SCOPES
from services.directory.tests.races import one_wins
from services.directory.tests.tenant import Tenant, new_tenant, platform_tenant

# Public APIs only (tests that read the database or reach another account stay all-in-one):
# also run against the distributed run (platform testing plugin).
pytestmark = pytest.mark.sdk


class IssuersTenant(Tenant):
    @property
    def issuers_path(self) -> str:
        return f"{self.path}/issuers"


@pytest.fixture
def tenant(platform) -> IssuersTenant:
    """The platform's account with its bootstrap key: for tests that look at their own issuers
    only (public APIs, so they also run against the distributed run)."""
    return platform_tenant(platform, IssuersTenant)


@pytest.fixture
async def own_tenant(platform, directory) -> IssuersTenant:
    """An account of its own, for tests that list or count the account's issuers."""
    return await new_tenant(platform, directory, "issuers tenant", kind=IssuersTenant)


async def test_create_get_update_delete_round_trip(tenant, platform, pool, kit):
    admin = tenant.sdk()
    created = await admin.issuers.create({"name": "acme-prod", "available_scopes": ["openid"]})
    assert created.id.startswith("i_") and created.account_id == tenant.account_id
    assert created.status == "active" and created.updated_at is None
    assert created.settings["access"]["sessions"] == {"max_age": 604800, "idle_timeout": 43200}
    assert created._etag == f'"{created.created_at}"'

    read = await admin.issuers.get(created.id)
    assert read == created and read._etag == created._etag

    updated = await admin.issuer(created.id).update(
        {"description": "Production", "metadata": {"crm": "x"}}, if_match=read._etag
    )
    assert updated.description == "Production" and updated.metadata.model_dump() == {"crm": "x"}
    assert updated.updated_at > created.created_at and updated._etag != created._etag
    assert (await admin.issuers.get(created.id)) == updated

    await admin.issuers.delete(created.id, if_match=updated._etag)
    with pytest.raises(NotFoundError):
        await admin.issuers.get(created.id)
    types = [e["type"] for e in await kit.stored_events(platform, pool, created.id)]
    assert types == ["issuer.created", "issuer.updated", "issuer.deleted"]


async def test_settings_carry_token_lifetimes_and_signing_algorithms_into_events(
    own_tenant, platform, pool, kit
):
    tenant = own_tenant
    admin = tenant.sdk()
    settings = {
        "access": {
            "mode": "invite_only",
            "sessions": {"max_age": 86400},
            "tokens": {"access_token_ttl": 600, "refresh_token_ttl": 1209600},
        },
        "security": {"signing": {"algorithms": ["RS256", "ES256"], "default_alg": "RS256"}},
        "branding": {"color": "#123456"},
    }
    issuer = await admin.issuers.create({"name": "configured", "settings": settings})
    assert issuer.settings["access"]["tokens"] == {
        "access_token_ttl": 600,
        "refresh_token_ttl": 1209600,
        "id_token_ttl": 1800,
    }
    assert issuer.settings["security"]["signing"]["algorithms"] == ["RS256", "ES256"]
    assert issuer.settings["branding"] == {"color": "#123456"}

    await admin.issuers.update(
        issuer.id, {"settings": {"access": {"tokens": {"id_token_ttl": 900}}}}
    )
    events = await kit.stored_events(platform, pool, issuer.id)
    created, updated = events[0]["data"], events[1]["data"]
    assert created["tokens"]["access_token_ttl"] == 600
    assert created["tokens"]["session_max_age"] == 86400
    assert created["tokens"]["signing_algs"] == ["RS256", "ES256"]
    assert created["tokens"]["default_signature_alg"] == "RS256"
    assert updated["changed"] == ["settings"] and updated["tokens"]["id_token_ttl"] == 900
    assert updated["tokens"]["access_token_ttl"] == 600  # a PATCH merges, it does not replace
    assert events[0]["meta"]["account_id"] == tenant.account_id
    assert events[0]["meta"]["issuer_id"] == issuer.id

    listed = [i async for i in admin.issuers.list_all()]
    assert listed[0].access_mode == "invite_only" and listed[0].branding_configured is True


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"access": {"tokens": {"access_token_ttl": 22 * 86400}}}, "access_token_ttl"),
        ({"access": {"sessions": {"max_age": "long"}}}, "max_age"),
        ({"access": {}, "security": {"signing": {"algorithms": ["HS256"]}}}, "algorithms"),
        ({"access": {"mode": "everyone"}}, "mode"),
        ({"portals": {}}, "settings.access"),
        ({"access": []}, "settings.access"),
    ],
)
async def test_invalid_settings_are_refused_without_an_event(
    tenant, platform, pool, kit, settings, field
):
    before = await kit.count_events(platform, pool)
    with pytest.raises(ValidationError) as caught:
        await tenant.sdk().issuers.create({"name": "bad", "settings": settings})
    assert caught.value.status_code == 422
    assert any(field in f["field"] for f in caught.value.fields)
    assert await kit.count_events(platform, pool) == before


async def test_list_all_pages_newest_first_with_filters(own_tenant):
    admin = own_tenant.sdk()
    made = [await admin.issuers.create({"name": f"env-{i}"}) for i in range(7)]
    await admin.issuers.update(made[0].id, {"status": "disabled"})
    page = await admin.issuers.list(limit=3)
    assert len(page.data) == 3 and page.has_more and page.next_cursor
    listed = [i async for i in admin.issuers.list_all(limit=2)]
    assert [i.id for i in listed] == [m.id for m in reversed(made)]
    item = listed[0]
    assert item.readiness == "incomplete" and item.auth_method_count == 0
    assert item.available_scope_count == 0 and item.access_mode == "open"
    disabled = [i.id async for i in admin.issuers.list_all(status="disabled")]
    assert disabled == [made[0].id]
    named = [i.id async for i in admin.issuers.list_all(q="ENV-3")]
    assert named == [made[3].id]
    with pytest.raises(ValidationError):
        await admin.issuers.list(status="sleeping")
    with pytest.raises(ValidationError):
        await admin.issuers.list(cursor="not-a-cursor")


async def test_readiness_needs_a_login_method_and_a_client(own_tenant):
    admin = own_tenant.sdk()
    issuer = await admin.issuers.create({"name": "getting-ready"})
    scope = admin.issuer(issuer.id)
    await scope.auth_methods.create({"type": "password"})
    await scope.auth_methods.create({"type": "magic_link", "signup": False})
    item = next(i for i in (await admin.issuers.list()).data if i.id == issuer.id)
    assert (item.auth_method_count, item.enabled_login_method_count) == (2, 2)
    assert item.enabled_signup_method_count == 1 and item.readiness == "incomplete"
    await scope.clients.create({"name": "app", "type": "m2m"})
    ready = [i.id async for i in admin.issuers.list_all(readiness="ready")]
    assert ready == [issuer.id]


async def test_auth_methods_crud_and_rules(tenant, platform, pool, kit):
    admin = tenant.sdk()
    issuer = await admin.issuers.create({"name": "methods"})
    methods = admin.issuer(issuer.id).auth_methods
    password = await methods.create({"type": "password", "settings": {"min_length": 12}})
    assert password.id.startswith("am_") and password.enabled is True
    google = await methods.create({"type": "social", "provider": "google"})
    with pytest.raises(ConflictError):
        await methods.create({"type": "password"})
    with pytest.raises(ValidationError):
        await methods.create({"type": "social"})
    with pytest.raises(ValidationError):
        await methods.create(
            {"type": "social", "provider": "github", "settings": {"client_secret": "x"}}
        )
    page = await methods.list()
    assert [m.id for m in page.data] == [password.id, google.id]
    assert page.has_more is False and page.next_cursor is None

    got = await methods.get(password.id)
    changed = await methods.update(password.id, {"enabled": False}, if_match=got._etag)
    assert changed.enabled is False and changed.settings == {"min_length": 12}
    with pytest.raises(PreconditionFailedError):
        await methods.update(password.id, {"enabled": True}, if_match=got._etag)
    await methods.delete(google.id)
    with pytest.raises(NotFoundError):
        await methods.get(google.id)
    types = [e["type"] for e in await kit.stored_events(platform, pool, issuer.id)]
    assert types[1:] == [
        "issuer.auth-method.created",
        "issuer.auth-method.created",
        "issuer.auth-method.updated",
        "issuer.auth-method.deleted",
    ]


async def test_deleting_an_issuer_deletes_its_clients_and_methods(tenant, platform, pool, kit):
    admin = tenant.sdk()
    issuer = await admin.issuers.create({"name": "doomed"})
    scope = admin.issuer(issuer.id)
    await scope.auth_methods.create({"type": "password"})
    client = await scope.clients.create({"name": "svc", "type": "m2m"})
    await scope.delete()
    assert [e["type"] for e in await kit.stored_events(platform, pool, client.id)] == [
        "client.created",
        "client.deleted",
    ]
    for call in (
        scope.get(),
        scope.auth_methods.list(),
        scope.clients.list(),
        scope.clients.get(client.id),
        scope.update({"name": "x"}),
        scope.delete(),
    ):
        with pytest.raises(NotFoundError):
            await call


async def test_unchanged_patch_appends_no_event(tenant, platform, pool, kit):
    admin = tenant.sdk()
    issuer = await admin.issuers.create({"name": "stable", "metadata": {"a": 1}})
    same = await admin.issuers.update(issuer.id, {"name": "stable", "metadata": {"a": 1}})
    assert same.updated_at is None and same._etag == issuer._etag
    assert len(await kit.stored_events(platform, pool, issuer.id)) == 1


async def test_concurrent_patches_with_one_etag_one_wins(tenant):
    admin = tenant.sdk()
    issuer = await admin.issuers.create({"name": "raced"})
    winner, loser = await one_wins(
        admin.issuers.update(issuer.id, {"name": "left"}, if_match=issuer._etag),
        admin.issuers.update(issuer.id, {"name": "right"}, if_match=issuer._etag),
    )
    assert loser.current_etag is not None
    assert (await admin.issuers.get(issuer.id)).name == winner.name


async def test_other_accounts_issuers_are_out_of_reach(platform, directory):
    tenant = await new_tenant(platform, directory, "issuers tenant")
    other = await new_tenant(platform, directory, "issuers tenant")
    theirs = await other.sdk().issuers.create({"name": "theirs"})
    mine = tenant.sdk()
    # My key on their account's paths: refused by the account check.
    with pytest.raises(ForbiddenError):
        await AuthPIAdmin(
            api_key=tenant.key,
            account_id=other.account_id,
            base_url=platform.api_url,
            retries=False,
        ).issuers.list()
    # Their issuer under my account's path: no such issuer here.
    scope = mine.issuer(theirs.id)
    for call in (
        scope.get(),
        scope.update({"name": "x"}),
        scope.delete(),
        scope.auth_methods.list(),
        scope.auth_methods.create({"type": "password"}),
    ):
        with pytest.raises(NotFoundError):
            await call
    assert [i.id async for i in mine.issuers.list_all()] == []
    assert (await other.sdk().issuers.get(theirs.id)).name == "theirs"
    async with tenant.http() as http:
        base = f"/v1/accounts/{other.account_id}/issuers"
        for method, path in (
            ("GET", base),
            ("POST", base),
            ("GET", f"{base}/{theirs.id}"),
            ("PATCH", f"{base}/{theirs.id}"),
            ("DELETE", f"{base}/{theirs.id}"),
            ("GET", f"{base}/{theirs.id}/auth-methods"),
        ):
            resp = await http.request(method, path, json={"name": "x"} if method != "GET" else None)
            assert resp.status_code == 403, (method, path)


@pytest.mark.parametrize(
    ("method", "suffix", "scope"),
    [
        ("GET", "", "issuers:read"),
        ("POST", "", "issuers:write"),
        ("GET", "/{i}", "issuers:read"),
        ("PATCH", "/{i}", "issuers:write"),
        ("DELETE", "/{i}", "issuers:delete"),
        ("GET", "/{i}/auth-methods", "issuers.auth-methods:read"),
        ("POST", "/{i}/auth-methods", "issuers.auth-methods:write"),
        ("GET", "/{i}/auth-methods/{m}", "issuers.auth-methods:read"),
        ("PATCH", "/{i}/auth-methods/{m}", "issuers.auth-methods:write"),
        ("DELETE", "/{i}/auth-methods/{m}", "issuers.auth-methods:delete"),
    ],
)
async def test_a_key_without_the_scope_is_refused(tenant, platform, kit, method, suffix, scope):
    admin = tenant.sdk()
    issuer = await admin.issuers.create({"name": "scoped"})
    am = await admin.issuer(issuer.id).auth_methods.create({"type": "password"})
    implied = {scope, scope.replace(":read", ":write"), scope.rsplit(":", 1)[0] + ":manage"}
    key = await kit.key_with(platform, [s for s in ALL_SCOPES if s not in implied])
    path = tenant.issuers_path + suffix.format(i=issuer.id, m=am.id)
    body = {"name": "x", "type": "otp"} if method in ("POST", "PATCH") else None
    async with tenant.http((key.key_id, key.secret)) as http:
        resp = await http.request(method, path, json=body)
    assert resp.status_code == 403 and resp.json()["error"] == "insufficient_scope"
    assert scope in resp.json()["error_description"]


async def test_wrong_credentials_are_401(tenant):
    bad = tenant.sdk(key=(tenant.key[0], "wrong-secret"))
    with pytest.raises(AuthenticationError):
        await bad.issuers.list()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"[1, 2]", 400),
        (b'{"description": "no name"}', 422),
        (b'{"name": 42}', 422),
        (b'{"name": ""}', 422),
        (b'{"name": "x", "status": "sleeping"}', 422),
        (b'{"name": "x", "available_scopes": "openid"}', 422),
        (b'{"name": "x", "available_scopes": ["has space"]}', 422),
        (b'{"name": "x", "settings": "yes"}', 422),
        (b'{"name": "nul\\u0000byte"}', 422),
        (b'{"name": "x", "metadata": {"bad key!": 1}}', 422),
    ],
)
async def test_malformed_create_is_refused_without_an_event(
    tenant, platform, pool, kit, body, status
):
    before = await kit.count_events(platform, pool)
    resp = await tenant.send_raw("POST", tenant.issuers_path, body)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"] == "invalid_request"
    assert await kit.count_events(platform, pool) == before


async def test_oversized_metadata_and_wrong_content_type_are_refused(tenant):
    async with tenant.http() as http:
        big = {"name": "x", "metadata": {"blob": "y" * 9000}}
        resp = await http.post(tenant.issuers_path, json=big)
        assert resp.status_code == 422 and resp.json()["fields"][0]["field"] == "metadata"
        resp = await http.post(
            tenant.issuers_path,
            content=b"name=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert resp.status_code == 415
        resp = await http.patch(f"{tenant.issuers_path}/i_missing", json={"name": "x"})
        assert resp.status_code == 404


async def test_unicode_names_and_unknown_fields_are_kept_and_ignored(tenant):
    async with tenant.http() as http:
        resp = await http.post(tenant.issuers_path, json={"name": "Ünïcødé 環境 🚀", "extra": 1})
        assert resp.status_code == 201, resp.text
        data = resp.json()["data"]
        assert data["name"] == "Ünïcødé 環境 🚀" and "extra" not in data
        assert resp.headers["ETag"] == f'"{data["created_at"]}"'


@pytest.mark.parametrize("bad_id", ["i_%00x", "i_%ED%A0%80", "i_unknown", "%20"])
async def test_unknown_or_unstorable_path_ids_are_404(tenant, bad_id):
    base = f"{tenant.issuers_path}/{bad_id}"
    async with tenant.http() as http:
        for method, path in (("GET", base), ("PATCH", base), ("DELETE", base),
                             ("GET", f"{base}/auth-methods"), ("GET", f"{base}/auth-methods/am_1"),
                             ("POST", f"{base}/auth-methods"), ("GET", f"{base}/clients"),
                             ("POST", f"{base}/clients/c_1/secret/rotate")):  # fmt: skip
            body = {"name": "x", "type": "password"} if method in ("POST", "PATCH") else None
            resp = await http.request(method, path, json=body)
            assert resp.status_code == 404, (method, path, resp.text)


async def test_a_forged_cursor_is_400(tenant):
    forged = base64.urlsafe_b64encode(b'["issuers", "late", 5]').rstrip(b"=").decode()
    async with tenant.http() as http:
        resp = await http.get(tenant.issuers_path, params={"cursor": forged})
    assert resp.status_code == 400 and resp.json()["fields"][0]["field"] == "cursor"
