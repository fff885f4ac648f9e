"""Account domains over real HTTP (core-api.md 3.3, contract 4.6), driven by the official admin
SDK and by httpx for malformed input: add, list, verify (DNS seen through a fake probe), assign,
unassign, remove, the primary flag through PATCH of the account, If-Match on the account's ETag,
uniqueness across accounts, the 20-domain limit, tenant isolation and scopes. Every refusal
appends no event, and neither does a command that changes nothing."""

from __future__ import annotations

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

from authpi.contracts.scopes import ALL_SCOPES, grants
from authpi.directory.domain.account_domains import challenge_name, challenge_token
from services.directory.tests.tenant import Tenant
from services.directory.tests.tenant import new_tenant as account_tenant


class PointedHosts:
    """A fake DNS probe: the hosts whose TXT challenge for one account a test has published
    (tests/security/test_domain_challenge.py asks a real DNS server)."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self.hosts: set[str] = set()

    async def txt_values(self, name: str) -> frozenset[str]:
        return frozenset(
            challenge_token(self.account_id, host)
            for host in self.hosts
            if challenge_name(host) == name
        )


class DomainsTenant(Tenant):
    @property
    def domains_path(self) -> str:
        return f"{self.path}/domains"


async def new_tenant(platform, kit) -> DomainsTenant:
    directory = kit.part(platform, "directory")
    return await account_tenant(platform, directory, "Domains Inc", kind=DomainsTenant)


def new_host() -> str:
    return f"auth-{uuid.uuid4().hex[:10]}.example.com"


@pytest.fixture
async def tenant(platform, kit) -> DomainsTenant:
    return await new_tenant(platform, kit)


@pytest.fixture
def dns(platform, kit, tenant):
    domains = kit.part(platform, "account_domains")
    real, fake = domains.probe, PointedHosts(tenant.account_id)
    domains.probe = fake
    yield fake
    domains.probe = real


def only(account, host: str):
    [domain] = [d for d in account.domains if d.host == host]
    return domain


async def test_an_added_domain_is_unverified_and_listed(platform, pool, kit, tenant):
    host = new_host()
    async with tenant.sdk() as admin:
        account = await admin.domains.create({"host": host.upper()})
        domain = only(account, host)
        assert (domain.verified, domain.primary, domain.assigned_issuer_id) == (False, False, None)
        assert domain.added_at == account.updated_at and domain.cf_status is None
        assert account._etag == f'"{account.updated_at}"'
        page = await admin.domains.list()
        assert [d.host for d in page.data] == [host]
        assert page.has_more is False and page.next_cursor is None
        assert [d.host async for d in admin.domains.list_all()] == [host]
        read = await admin.accounts.get(tenant.account_id)
        assert read == account and read._etag == account._etag
    events = await kit.events_of(platform, pool, tenant.account_id)
    assert events == ["account.created", "account.domain.added"]


async def test_verify_assign_unassign_round_trip(platform, pool, kit, tenant, dns):
    host = new_host()
    dns.hosts.add(host)
    async with tenant.sdk() as admin:
        issuer = await admin.issuers.create({"name": "portal"})
        await admin.domains.create({"host": host})
        verified = await admin.domains.verify(host)
        assert only(verified, host).verified is True
        assigned = await admin.domains.assign(host, {"issuer_id": issuer.id})
        domain = only(assigned, host)
        assert domain.assigned_issuer_id == issuer.id and domain.assigned_at == assigned.updated_at
        listed = (await admin.domains.list()).data[0]
        assert listed.assigned_issuer_id == issuer.id and listed.verified is True
        before = await kit.count_events(platform, pool)
        again = await admin.domains.verify(host)
        same = await admin.domains.assign(host, {"issuer_id": issuer.id})
        assert again._etag == same._etag == assigned._etag
        assert await kit.count_events(platform, pool) == before
        unassigned = await admin.domains.unassign(host)
        assert only(unassigned, host).assigned_issuer_id is None
        before = await kit.count_events(platform, pool)
        assert (await admin.domains.unassign(host))._etag == unassigned._etag
        assert await kit.count_events(platform, pool) == before
    assert await kit.events_of(platform, pool, tenant.account_id) == [
        "account.created", "account.domain.added", "account.updated",
        "account.domain.assigned", "account.domain.unassigned",
    ]  # fmt: skip


async def test_verifying_a_domain_that_points_elsewhere_is_409(platform, pool, kit, tenant, dns):
    host = new_host()
    async with tenant.sdk() as admin:
        await admin.domains.create({"host": host})
        before = await kit.count_events(platform, pool)
        with pytest.raises(ConflictError) as caught:
            await admin.domains.verify(host)
        assert host in caught.value.error_description
        assert only(await admin.accounts.get(tenant.account_id), host).verified is False
    assert await kit.count_events(platform, pool) == before


async def test_assignment_needs_a_verified_domain_and_an_issuer_of_the_account(
    platform, pool, kit, tenant, dns
):
    host = new_host()
    other = await new_tenant(platform, kit)
    async with tenant.sdk() as admin, other.sdk() as stranger:
        issuer = await admin.issuers.create({"name": "mine"})
        foreign = await stranger.issuers.create({"name": "theirs"})
        await admin.domains.create({"host": host})
        before = await kit.count_events(platform, pool)
        with pytest.raises(ConflictError):
            await admin.domains.assign(host, {"issuer_id": issuer.id})
        dns.hosts.add(host)
        await admin.domains.verify(host)
        before = await kit.count_events(platform, pool)
        for body in ({"issuer_id": foreign.id}, {"issuer_id": "i_" + "0" * 25}):
            with pytest.raises(ValidationError) as caught:
                await admin.domains.assign(host, body)
            assert caught.value.status_code == 422
            assert caught.value.fields[0]["field"] == "issuer_id"
        with pytest.raises(ValidationError) as caught:
            await admin.domains.assign(host)
        assert caught.value.status_code == 400
    assert await kit.count_events(platform, pool) == before


async def test_removing_an_assigned_domain_unassigns_it_and_frees_the_host(
    platform, pool, kit, tenant, dns
):
    host = new_host()
    dns.hosts.add(host)
    other = await new_tenant(platform, kit)
    async with tenant.sdk() as admin, other.sdk() as stranger:
        issuer = await admin.issuers.create({"name": "portal"})
        await admin.domains.create({"host": host})
        await admin.domains.verify(host)
        await admin.domains.assign(host, {"issuer_id": issuer.id})
        await admin.domains.delete(host)
        assert (await admin.domains.list()).data == []
        with pytest.raises(NotFoundError):
            await admin.domains.delete(host)
        taken = await stranger.domains.create({"host": host})
        assert only(taken, host).verified is False
    events = await kit.events_of(platform, pool, tenant.account_id)
    assert events[-2:] == ["account.domain.unassigned", "account.domain.removed"]


async def test_a_host_belongs_to_one_account_only(platform, pool, kit, tenant):
    host = new_host()
    other = await new_tenant(platform, kit)
    async with tenant.sdk() as admin, other.sdk() as stranger:
        await admin.domains.create({"host": host})
        before = await kit.count_events(platform, pool)
        with pytest.raises(ConflictError):
            await admin.domains.create({"host": host})
        with pytest.raises(ConflictError):
            await stranger.domains.create({"host": host.upper() + "."})
        assert (await stranger.domains.list()).data == []
    assert await kit.count_events(platform, pool) == before


async def test_the_twenty_first_domain_is_refused(platform, pool, kit, tenant):
    async with tenant.sdk() as admin:
        for _ in range(20):
            await admin.domains.create({"host": new_host()})
        before = await kit.count_events(platform, pool)
        with pytest.raises(ValidationError) as caught:
            await admin.domains.create({"host": new_host()})
        assert caught.value.status_code == 422
        assert len((await admin.domains.list()).data) == 20
    assert await kit.count_events(platform, pool) == before


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b'{"host": ', 400),
        (b"[]", 400),
        (b"{}", 422),
        (b'{"host": 5}', 422),
        (b'{"host": null}', 422),
        (b'{"host": ""}', 422),
        (b'{"host": "https://auth.example.com/login"}', 422),
        (b'{"host": "auth.example.com:8443"}', 422),
        (b'{"host": "localhost"}', 422),
        (b'{"host": "10.0.0.1"}', 422),
        (b'{"host": "no-dot"}', 422),
        (b'{"host": "a\\u0000b.example.com"}', 422),
        (b'{"host": "\\ud800.example.com"}', 400),
        (b'{"host": "' + b"x" * 400 + b'.com"}', 422),
    ],
)
async def test_bad_add_bodies_are_refused_without_events(platform, pool, kit, tenant, raw, status):
    before = await kit.count_events(platform, pool)
    resp = await tenant.send_raw("POST", tenant.domains_path, raw)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"] == "invalid_request" and resp.json()["retryable"] is False
    assert await kit.count_events(platform, pool) == before


@pytest.mark.parametrize("segment", ["localhost", "a..b", "127.0.0.1", "x%00y.com", "%C3%28.com"])
async def test_path_segments_that_cannot_be_domains_are_404(tenant, segment):
    async with tenant.http() as http:
        for method, suffix in (("DELETE", ""), ("POST", "/verify"), ("POST", "/unassign")):
            resp = await http.request(method, f"{tenant.domains_path}/{segment}{suffix}")
            assert resp.status_code == 404, (method, suffix, resp.text)


async def test_patch_of_the_account_sets_the_primary_domain(platform, pool, kit, tenant):
    first, second = new_host(), new_host()
    async with tenant.sdk() as admin:
        await admin.domains.create({"host": first})
        await admin.domains.create({"host": second})
        account = await admin.accounts.update(
            tenant.account_id, {"domains": [{"host": first.upper(), "primary": True}]}
        )
        assert (only(account, first).primary, only(account, second).primary) == (True, False)
        swapped = await admin.accounts.update(
            tenant.account_id, {"domains": [{"host": second, "primary": True}]},
            if_match=account._etag,
        )  # fmt: skip
        assert (only(swapped, first).primary, only(swapped, second).primary) == (False, True)
        assert [d.primary for d in (await admin.domains.list()).data] == [False, True]
        before = await kit.count_events(platform, pool)
        same = await admin.accounts.update(
            tenant.account_id, {"domains": [{"host": second, "primary": True}]}
        )
        assert same._etag == swapped._etag
        two_primaries = [{"host": first, "primary": True}, {"host": second, "primary": True}]
        for bad in ([{"host": new_host(), "primary": True}], [{"host": first}], two_primaries):
            with pytest.raises(ValidationError) as caught:
                await admin.accounts.update(tenant.account_id, {"domains": bad})
            assert caught.value.status_code == 422
    assert await kit.count_events(platform, pool) == before


async def test_domain_writes_honour_if_match_on_the_account(platform, pool, kit, tenant, dns):
    host = new_host()
    dns.hosts.add(host)
    async with tenant.sdk() as admin:
        stale = await admin.domains.create({"host": host})
        fresh = await admin.accounts.update(tenant.account_id, {"name": "Renamed"})
        before = await kit.count_events(platform, pool)
        for call in (
            admin.domains.verify(host, if_match=stale._etag),
            admin.domains.unassign(host, if_match=stale._etag),
            admin.domains.delete(host, if_match=stale._etag),
        ):
            with pytest.raises(PreconditionFailedError) as caught:
                await call
            assert caught.value.current_etag == fresh._etag
        assert await kit.count_events(platform, pool) == before
        verified = await admin.domains.verify(host, if_match=fresh._etag)
        await admin.domains.delete(host, if_match=verified._etag)
        assert (await admin.domains.list()).data == []


ROUTES = [
    ("domains:read", "GET", ""),
    ("domains:write", "POST", ""),
    ("domains:delete", "DELETE", "/{host}"),
    ("domains:write", "POST", "/{host}/assign"),
    ("domains:write", "POST", "/{host}/unassign"),
    ("domains:write", "POST", "/{host}/verify"),
]


@pytest.mark.parametrize(("scope", "method", "suffix"), ROUTES)
async def test_a_key_lacking_exactly_the_scope_is_refused(
    platform, pool, kit, tenant, scope, method, suffix
):
    host = new_host()
    async with tenant.sdk() as admin:
        await admin.domains.create({"host": host})
    weak = await kit.key_with(
        platform, [s for s in ALL_SCOPES if not grants([s], scope)], tenant.account_id
    )
    before = await kit.count_events(platform, pool)
    body = {"host": new_host(), "issuer_id": "i_x"} if method == "POST" else None
    async with tenant.http((weak.key_id, weak.secret)) as http:
        resp = await http.request(method, tenant.domains_path + suffix.format(host=host), json=body)
    assert resp.status_code == 403, resp.text
    assert resp.json()["error"] == "insufficient_scope" and scope in resp.text
    assert await kit.count_events(platform, pool) == before


@pytest.mark.parametrize(("method", "suffix"), [(m, s) for _, m, s in ROUTES])
async def test_another_accounts_domains_are_out_of_reach(
    platform, pool, kit, tenant, method, suffix
):
    host = new_host()
    victim = await new_tenant(platform, kit)
    async with victim.sdk() as admin:
        await admin.domains.create({"host": host})
    before = await kit.count_events(platform, pool)
    body = {"host": new_host(), "issuer_id": "i_x"} if method == "POST" else None
    async with tenant.http() as http:
        url = victim.domains_path + suffix.format(host=host)
        assert (await http.request(method, url, json=body)).status_code == 403
        missing = f"/v1/accounts/acc_{'z' * 25}/domains" + suffix.format(host=host)
        assert (await http.request(method, missing, json=body)).status_code == 404
        # The attacker's own path never reaches the victim's domain either.
        if suffix:
            own = tenant.domains_path + suffix.format(host=host)
            assert (await http.request(method, own, json=body)).status_code == 404
    assert await kit.count_events(platform, pool) == before
    async with victim.sdk() as admin:
        assert [d.host for d in (await admin.domains.list()).data] == [host]


async def test_sdk_sees_forbidden_for_another_account(platform, kit, tenant):
    victim = await new_tenant(platform, kit)
    async with tenant.sdk() as admin:
        foreign = AuthPIAdmin(api_key=tenant.key, account_id=victim.account_id,
                              base_url=platform.api_url, retries=False)  # fmt: skip
        async with foreign:
            with pytest.raises(ForbiddenError):
                await foreign.domains.list()
            with pytest.raises(ForbiddenError):
                await foreign.domains.create({"host": new_host()})
        assert (await admin.domains.list()).data == []


async def test_deleting_an_issuer_unassigns_its_domains(platform, pool, kit, tenant, dns):
    host = new_host()
    dns.hosts.add(host)
    async with tenant.sdk() as admin:
        issuer = await admin.issuers.create({"name": "short-lived"})
        await admin.domains.create({"host": host})
        await admin.domains.verify(host)
        await admin.domains.assign(host, {"issuer_id": issuer.id})
        await admin.issuers.delete(issuer.id)
        domain = only(await admin.accounts.get(tenant.account_id), host)
        assert domain.assigned_issuer_id is None and domain.verified is True
    events = await kit.events_of(platform, pool, tenant.account_id)
    assert events[-1] == "account.domain.unassigned"
