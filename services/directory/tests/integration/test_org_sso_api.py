"""Organization SSO through the official admin SDK (core-api.md 3.16, contract 4.30): a domain is
added with its TXT record, verified through the platform's real DNS probe asking a DNS server of
the test's own on 127.0.0.1, refused for a second organization of the issuer once verified, and
routed by `/{issuer}/sso/discover` only once verified; the secret rotates; scopes and tenants
hold."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from authpi_admin.errors import ConflictError, ForbiddenError, NotFoundError

from authpi.platform.testing.dns import Zone, dns_zone
from authpi.platform.testing.upstream import sso_config
from authpi.testing.plugin import eventually
from services.directory.tests.integration.conftest import admin_for, key_with, new_issuer

# Public APIs only (tests that read the database or reach another account stay all-in-one):
# also run against the distributed run (platform testing plugin).
pytestmark = pytest.mark.sdk


@pytest.fixture
async def zone(platform) -> AsyncIterator[Zone]:
    async with dns_zone(platform) as published:
        yield published


def new_domain() -> str:
    return f"sso-{uuid.uuid4().hex[:10]}.example.com"


@pytest.mark.in_process  # the DNS zone replaces the directory's probe in-process
async def test_add_verify_remove_and_rotate_through_the_sdk(platform, admin, zone):
    issuer = await new_issuer(admin)
    orgs = admin.issuer(issuer).organizations
    org = await orgs.create({"name": "Acme", "sso": sso_config()})
    sso = admin.issuer(issuer).organization(org.id).sso
    domain = new_domain()

    added = await sso.add_domain({"domain": domain.upper()})
    assert added.domain == domain and added.txt_record_name == f"_authpi-sso.{domain}"
    failed = await sso.verify_domain(domain)
    assert failed.verified is False and added.txt_record_value in (failed.error or "")

    zone.txt[added.txt_record_name] = ["unrelated", added.txt_record_value]
    assert (await sso.verify_domain(domain)).verified is True
    assert (await sso.verify_domain(domain)).verified is True  # repeatable
    with pytest.raises(ConflictError):
        await sso.add_domain({"domain": domain})

    first, second = await sso.rotate_secret(), await sso.rotate_secret()
    assert len(first.secret) >= 32 and first.secret != second.secret

    removed = await sso.remove_domain(domain)
    assert removed["domain"] == domain
    with pytest.raises(NotFoundError):
        await sso.verify_domain(domain)
    with pytest.raises(NotFoundError):
        await sso.remove_domain(domain)


@pytest.mark.in_process  # the DNS zone replaces the directory's probe in-process
async def test_a_verified_domain_is_refused_for_another_organization(platform, admin, zone):
    issuer = await new_issuer(admin)
    orgs = admin.issuer(issuer).organizations
    a, b = await orgs.create({"name": "A"}), await orgs.create({"name": "B"})
    domain = new_domain()
    sso_a, sso_b = (admin.issuer(issuer).organization(o.id).sso for o in (a, b))
    added_a, added_b = await sso_a.add_domain({"domain": domain}), await sso_b.add_domain(
        {"domain": domain})  # fmt: skip
    assert added_a.txt_record_value != added_b.txt_record_value
    # A's record never verifies B.
    zone.txt[added_a.txt_record_name] = [added_a.txt_record_value]
    assert (await sso_b.verify_domain(domain)).verified is False
    assert (await sso_a.verify_domain(domain)).verified is True
    zone.txt[added_a.txt_record_name] = [added_a.txt_record_value, added_b.txt_record_value]
    with pytest.raises(ConflictError):
        await sso_b.verify_domain(domain)
    with pytest.raises(ConflictError):
        await (
            admin.issuer(issuer)
            .organization((await orgs.create({"name": "C"})).id)
            .sso.add_domain({"domain": domain})
        )
    # Released with the domain: B may verify it now.
    await sso_a.remove_domain(domain)
    assert (await sso_b.verify_domain(domain)).verified is True


async def test_scopes_and_tenants(platform, admin):
    issuer = await new_issuer(admin)
    org = await admin.issuer(issuer).organizations.create({"name": "Acme"})
    read = await key_with(platform, ["issuers.organizations.sso:read"])
    async with admin_for(platform, read.key_id, read.secret) as reader:
        sso = reader.issuer(issuer).organization(org.id).sso
        with pytest.raises(ForbiddenError):
            await sso.add_domain({"domain": new_domain()})
        with pytest.raises(ForbiddenError):
            await sso.rotate_secret()
    other = await new_issuer(admin)
    with pytest.raises(NotFoundError):
        await admin.issuer(other).organization(org.id).sso.add_domain({"domain": new_domain()})
    with pytest.raises(NotFoundError):
        await admin.issuer(other).organization(org.id).sso.rotate_secret()


@pytest.mark.in_process  # the DNS zone replaces the directory's probe in-process
async def test_discover_routes_only_a_verified_domain(platform, admin, zone):
    from services.token.tests.integration.test_sso_discovery import discover, login_page_origin

    issuer = await new_issuer(admin)
    org = await admin.issuer(issuer).organizations.create({"name": "Acme", "sso": sso_config()})
    sso = admin.issuer(issuer).organization(org.id).sso
    domain = new_domain()
    added = await sso.add_domain({"domain": domain})
    origin = await login_page_origin(platform, issuer)

    async def routed() -> Any:
        return (await discover(platform, issuer, f"jo@{domain}", origin)).json()

    assert (await routed()) == {"sso": False}  # added, unverified: routes nowhere
    zone.txt[added.txt_record_name] = [added.txt_record_value]
    assert (await sso.verify_domain(domain)).verified is True
    await eventually(lambda: _is_routed(routed, org.id))


async def _is_routed(routed: Any, org_id: str) -> bool:
    answer = await routed()
    return answer.get("sso") is True and answer.get("org_id") == org_id
