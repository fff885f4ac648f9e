"""Clients over real HTTP (core-api.md 3.8, 2.10, contract 4.17): the SDK's CRUD, auto-pagination
and secret rotation; secrets shown once and stored only as digests; the events carrying what
the token endpoint needs; settings rules (grant types, redirect URIs, TTL cap, signing
algorithm, organization restriction); SDK error classes, If-Match races, tenant isolation,
scopes, and malformed input that is refused without a 500 and without an event."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from authpi_admin import AuthPIAdmin
from authpi_admin.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
)

from authpi.contracts.scopes import ALL_SCOPES
from services.directory.tests.races import one_wins
from services.directory.tests.tenant import Tenant, platform_tenant
from services.directory.tests.tenant import new_tenant as account_tenant

# Public APIs only (tests that read the database or reach another account stay all-in-one):
# also run against the distributed run (platform testing plugin).
pytestmark = pytest.mark.sdk

GRACE_MS = 15 * 60 * 1000


class ClientsTenant(Tenant):
    """A tenant with one issuer to put clients in."""

    issuer_id: str

    def clients(self, key: tuple[str, str] | None = None):
        return self.sdk(key).issuer(self.issuer_id).clients

    @property
    def clients_path(self) -> str:
        return f"{self.path}/issuers/{self.issuer_id}/clients"


async def new_tenant(platform, kit, *, own_account: bool = False) -> ClientsTenant:
    """An issuer of its own in the platform's account (Core API only), or with `own_account` in
    an account of its own, made in-process (no Core API route creates accounts)."""
    if not own_account:
        tenant = platform_tenant(platform, ClientsTenant)
        tenant.issuer_id = await kit.tenants.new_issuer(platform, f"apps-{uuid.uuid4().hex[:8]}")
        return tenant
    directory = kit.part(platform, "directory")
    tenant = await account_tenant(platform, directory, "clients tenant", kind=ClientsTenant)
    tenant.issuer_id = (await tenant.sdk().issuers.create({"name": "apps"})).id
    return tenant


@pytest.fixture
async def tenant(platform, kit) -> ClientsTenant:
    return await new_tenant(platform, kit)


def sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def test_confidential_client_gets_a_secret_once(tenant, platform, pool, kit):
    clients = tenant.clients()
    created = await clients.create(
        {
            "name": "Acme Dashboard",
            "type": "web",
            "settings": {"redirect_uris": ["https://app.acme.test/callback"]},
        }
    )
    assert created.id.startswith("c_") and created.issuer_id == tenant.issuer_id
    assert created.confidential is True and created.status == "active"
    assert created.secret and len(created.secret) >= 43
    assert created.settings["grant_types"] == ["authorization_code", "refresh_token"]
    assert created.settings["openid"]["redirect_uris"] == ["https://app.acme.test/callback"]
    read = await clients.get(created.id)
    assert read.name == "Acme Dashboard" and read._etag == created._etag
    async with tenant.http() as http:
        body = (await http.get(f"{tenant.clients_path}/{created.id}")).json()["data"]
    assert "secret" not in body
    assert await kit.places_holding(platform, pool, created.secret) == []
    (event,) = await kit.stored_events(platform, pool, created.id)
    assert event["data"]["secret_sha256"] == sha256(created.secret)


async def test_public_client_has_no_secret_and_cannot_rotate(tenant):
    clients = tenant.clients()
    spa = await clients.create(
        {"name": "spa", "type": "spa", "settings": {"redirect_uris": ["http://localhost:3000/cb"]}}
    )
    assert spa.secret is None and spa.confidential is False
    with pytest.raises(ConflictError):
        await clients.rotate_secret(spa.id)


async def test_events_carry_what_the_token_endpoint_needs(tenant, platform, pool, kit):
    clients = tenant.clients()
    settings = {
        "scopes": ["invoices:read"],
        "audiences": ["https://api.acme.test"],
        "access_token_ttl": 900,
        "response_signature_alg": "EdDSA",
        "organizations": {"mode": "allowlist", "allowlist": ["org_a1"]},
    }
    m2m = await clients.create({"name": "billing", "type": "m2m", "settings": settings})
    (event,) = await kit.stored_events(platform, pool, m2m.id)
    data, meta = event["data"], event["meta"]
    assert meta["account_id"] == tenant.account_id and meta["issuer_id"] == tenant.issuer_id
    assert data["issuer_id"] == tenant.issuer_id and data["status"] == "active"
    assert data["client_type"] == "m2m" and data["confidential"] is True
    config = data["config"]
    assert config["grant_types"] == ["client_credentials"]
    assert config["scopes"] == ["invoices:read"] and config["audiences"] == [
        "https://api.acme.test"
    ]
    assert config["access_token_ttl"] == 900 and config["response_signature_alg"] == "EdDSA"
    assert config["organizations"] == {"mode": "allowlist", "allowlist": ["org_a1"]}
    assert data["secret_sha256"] == sha256(m2m.secret)


async def test_rotation_returns_a_new_secret_and_keeps_the_previous_digest_15_minutes(
    tenant, platform, pool, kit
):
    clients = tenant.clients()
    created = await clients.create({"name": "svc", "type": "m2m"})
    rotated = await clients.rotate_secret(created.id, if_match=created._etag)
    assert rotated.secret and rotated.secret != created.secret
    after = await clients.get(created.id)
    assert after.secret_rotated_at is not None and after._etag == rotated._etag
    event = (await kit.stored_events(platform, pool, created.id))[-1]
    assert event["type"] == "client.secret.rotated"
    data = event["data"]
    assert data["secret_sha256"] == sha256(rotated.secret)
    assert data["previous_secret_sha256"] == sha256(created.secret)
    assert data["previous_valid_until"] == data["secret_rotated_at"] + GRACE_MS
    assert await kit.places_holding(platform, pool, rotated.secret) == []
    with pytest.raises(PreconditionFailedError):
        await clients.rotate_secret(created.id, if_match=created._etag)


async def test_list_all_pages_and_filters(tenant):
    clients = tenant.clients()
    made = [await clients.create({"name": f"app-{i}", "type": "m2m"}) for i in range(5)]
    native = await clients.create(
        {"name": "Mobile", "type": "native", "settings": {"redirect_uris": ["com.acme.app:/cb"]}}
    )
    listed = [c async for c in clients.list_all(limit=2)]
    assert [c.id for c in listed] == [native.id, *(m.id for m in reversed(made))]
    item = listed[0]
    assert item.application_type == "native" and item.redirect_uri_count == 1
    assert item.protocol == "oidc" and item.grant_types == ["authorization_code", "refresh_token"]
    assert [c.id async for c in clients.list_all(name="mobi")] == [native.id]
    assert [c.id async for c in clients.list_all(application_type="native")] == [native.id]
    await clients.delete(made[0].id)
    assert made[0].id not in [c.id async for c in clients.list_all()]
    assert [c.id async for c in clients.list_all(status="deleted")] == [made[0].id]
    with pytest.raises(ValidationError):
        await clients.list(status="gone")


async def test_update_merges_settings_and_status_emits_block_events(tenant, platform, pool, kit):
    clients = tenant.clients()
    web = await clients.create(
        {
            "name": "web",
            "type": "web",
            "settings": {"redirect_uris": ["https://a.test/cb"], "scopes": ["openid"]},
        }
    )
    updated = await clients.update(
        web.id, {"settings": {"refresh_token_ttl": 3600}}, if_match=web._etag
    )
    assert updated.settings["redirect_uris"] == ["https://a.test/cb"]
    assert updated.settings["refresh_token_ttl"] == 3600
    disabled = await clients.update(web.id, {"status": "disabled", "status_reason": "audit"})
    assert disabled.status == "disabled" and disabled.status_at is not None
    again = await clients.update(web.id, {"status": "disabled"})
    assert again._etag == disabled._etag
    await clients.update(web.id, {"status": "active"})
    types = [e["type"] for e in await kit.stored_events(platform, pool, web.id)]
    assert types == ["client.created", "client.updated", "client.blocked", "client.unblocked"]
    with pytest.raises(ValidationError):
        await clients.update(web.id, {"type": "spa"})


@pytest.mark.parametrize(
    ("client_type", "settings", "field"),
    [
        ("web", {"redirect_uris": ["http://app.acme.test/cb"]}, "redirect_uris.0"),
        ("web", {"redirect_uris": ["https://app.acme.test/cb#frag"]}, "redirect_uris.0"),
        ("web", {"redirect_uris": ["https://*.acme.test/cb"]}, "redirect_uris.0"),
        ("web", {"redirect_uris": ["https://user@acme.test/cb"]}, "redirect_uris.0"),
        ("spa", {"redirect_uris": ["com.acme.app:/cb"]}, "redirect_uris.0"),
        ("spa", {"grant_types": ["client_credentials"]}, "grant_types.0"),
        ("m2m", {"grant_types": ["authorization_code"]}, "grant_types.0"),
        ("m2m", {"access_token_ttl": 21 * 86400 + 1}, "access_token_ttl"),
        ("m2m", {"response_signature_alg": "HS256"}, "response_signature_alg"),
        ("m2m", {"organizations": {"mode": "some"}}, "organizations.mode"),
        ("m2m", {"organizations": {"mode": "all", "allowlist": ["org_x"]}}, "allowlist"),
        ("m2m", {"scopes": "openid"}, "scopes"),
    ],
)
async def test_invalid_settings_are_refused_without_an_event(
    tenant, platform, pool, kit, client_type, settings, field
):
    before = await kit.count_events(platform, pool)
    with pytest.raises(ValidationError) as caught:
        await tenant.clients().create({"name": "bad", "type": client_type, "settings": settings})
    assert caught.value.status_code == 422
    assert any(field in f["field"] for f in caught.value.fields), caught.value.fields
    assert await kit.count_events(platform, pool) == before


async def test_loopback_http_and_native_schemes_are_accepted(tenant):
    clients = tenant.clients()
    native = await clients.create(
        {
            "name": "cli",
            "type": "native",
            "settings": {"redirect_uris": ["http://127.0.0.1/callback", "com.acme.cli:/oauth"]},
        }
    )
    assert native.settings["openid"]["application_type"] == "native"


async def test_deleted_client_is_gone_and_delete_is_repeatable(tenant, platform, pool, kit):
    clients = tenant.clients()
    client = await clients.create({"name": "temp", "type": "m2m"})
    await clients.delete(client.id, if_match=client._etag)
    await clients.delete(client.id)
    for call in (
        clients.get(client.id),
        clients.update(client.id, {"name": "x"}),
        clients.rotate_secret(client.id),
    ):
        with pytest.raises(NotFoundError):
            await call
    types = [e["type"] for e in await kit.stored_events(platform, pool, client.id)]
    assert types == ["client.created", "client.deleted"]
    with pytest.raises(NotFoundError):
        await clients.delete("c_doesnotexist")


async def test_concurrent_patches_with_one_etag_one_wins(tenant):
    clients = tenant.clients()
    client = await clients.create({"name": "raced", "type": "m2m"})
    winner, _ = await one_wins(
        clients.update(client.id, {"name": "left"}, if_match=client._etag),
        clients.update(client.id, {"name": "right"}, if_match=client._etag),
    )
    assert (await clients.get(client.id)).name == winner.name


@pytest.mark.in_process  # another account: made in-process
async def test_other_accounts_clients_are_out_of_reach(tenant, platform, kit):
    other = await new_tenant(platform, kit, own_account=True)
    theirs = await other.clients().create({"name": "theirs", "type": "m2m"})
    # Their issuer under my account: no such issuer here.
    mine = tenant.sdk().issuer(other.issuer_id).clients
    for call in (
        mine.list(),
        mine.create({"name": "x", "type": "m2m"}),
        mine.get(theirs.id),
        mine.update(theirs.id, {"name": "x"}),
        mine.delete(theirs.id),
        mine.rotate_secret(theirs.id),
    ):
        with pytest.raises(NotFoundError):
            await call
    # Their client under my issuer: no such client here.
    with pytest.raises(NotFoundError):
        await tenant.clients().get(theirs.id)
    # My key on their account's paths: refused.
    with pytest.raises(ForbiddenError):
        await (
            AuthPIAdmin(
                api_key=tenant.key,
                account_id=other.account_id,
                base_url=platform.api_url,
                retries=False,
            )
            .issuer(other.issuer_id)
            .clients.list()
        )
    async with tenant.http() as http:
        base = other.clients_path
        for method, path in (
            ("GET", base),
            ("POST", base),
            ("GET", f"{base}/{theirs.id}"),
            ("PATCH", f"{base}/{theirs.id}"),
            ("DELETE", f"{base}/{theirs.id}"),
            ("POST", f"{base}/{theirs.id}/secret/rotate"),
        ):
            body = {"name": "x", "type": "m2m"} if method in ("POST", "PATCH") else None
            resp = await http.request(method, path, json=body)
            assert resp.status_code == 403, (method, path)
    assert (await other.clients().get(theirs.id)).name == "theirs"


@pytest.mark.parametrize(
    ("method", "suffix", "scope"),
    [
        ("GET", "", "issuers.clients:read"),
        ("POST", "", "issuers.clients:write"),
        ("GET", "/{c}", "issuers.clients:read"),
        ("PATCH", "/{c}", "issuers.clients:write"),
        ("DELETE", "/{c}", "issuers.clients:delete"),
        ("POST", "/{c}/secret/rotate", "issuers.clients:manage"),
    ],
)
async def test_a_key_without_the_scope_is_refused(tenant, platform, kit, method, suffix, scope):
    client = await tenant.clients().create({"name": "scoped", "type": "m2m"})
    implied = {scope, scope.replace(":read", ":write"), scope.rsplit(":", 1)[0] + ":manage"}
    key = await kit.key_with(platform, [s for s in ALL_SCOPES if s not in implied])
    path = tenant.clients_path + suffix.format(c=client.id)
    body = {"name": "x", "type": "m2m"} if method in ("POST", "PATCH") else None
    async with tenant.http((key.key_id, key.secret)) as http:
        resp = await http.request(method, path, json=body)
    assert resp.status_code == 403 and resp.json()["error"] == "insufficient_scope"
    assert scope in resp.json()["error_description"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{oops", 400),
        (b'"just a string"', 400),
        (b'{"type": "m2m"}', 422),
        (b'{"name": "x"}', 422),
        (b'{"name": "x", "type": "desktop"}', 422),
        (b'{"name": ["x"], "type": "m2m"}', 422),
        (b'{"name": "x", "type": "m2m", "settings": []}', 422),
        (b'{"name": "x", "type": "m2m", "logo_url": "javascript:alert(1)"}', 422),
        (b'{"name": "x\\u0000", "type": "m2m"}', 422),
        (b'{"name": "x", "type": "m2m", "metadata": {"k": "' + b"v" * 9000 + b'"}}', 422),
    ],
)
async def test_malformed_create_is_refused_without_an_event(
    tenant, platform, pool, kit, body, status
):
    before = await kit.count_events(platform, pool)
    resp = await tenant.send_raw("POST", tenant.clients_path, body)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"] == "invalid_request"
    assert await kit.count_events(platform, pool) == before


async def test_unicode_name_and_unknown_fields(tenant):
    async with tenant.http() as http:
        resp = await http.post(
            tenant.clients_path, json={"name": "Tableau de bord 仪表板", "type": "m2m", "x": 1}
        )
        assert resp.status_code == 201, resp.text
        data = resp.json()["data"]
        assert data["name"] == "Tableau de bord 仪表板" and "x" not in data
        assert resp.headers["ETag"] == f'"{data["created_at"]}"'
        rotated = await http.post(f"{tenant.clients_path}/{data['id']}/secret/rotate")
        assert rotated.status_code == 200 and set(rotated.json()["data"]) == {"secret"}


@pytest.mark.parametrize("bad_id", ["c_%00", "c_%ED%A0%80", "c_unknown"])
async def test_unknown_or_unstorable_client_ids_are_404(tenant, bad_id):
    base = f"{tenant.clients_path}/{bad_id}"
    async with tenant.http() as http:
        for method, path in (("GET", base), ("PATCH", base), ("DELETE", base),
                             ("POST", f"{base}/secret/rotate")):  # fmt: skip
            resp = await http.request(
                method, path, json={"name": "x"} if method == "PATCH" else None
            )
            assert resp.status_code == 404, (method, path, resp.text)
