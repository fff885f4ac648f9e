"""SSO discovery over HTTP on the IdP port (idp-api.md 10.2, 14 #20): portal-authenticated by the
`Authpi-Portal` header the sign-in page carries, 401 otherwise; an address routes to an active
organization with SSO enabled and a domain the directory verified, learnt by token-organizations
from the directory's events; an answer never depends on whether a user holds the address."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from psycopg import sql

from authpi.contracts.base import Meta
from authpi.contracts.directory import OrganizationSsoDomainDeleted, OrganizationSsoDomainVerified
from authpi.crypto.clock import FixedClock
from authpi.eventstore.store import EventStore
from authpi.platform.testing.tenants import part, schema_of
from authpi.platform.testing.upstream import sso_config
from authpi.testing.plugin import eventually
from authpi.token.endpoints.sso import PortalOrigin

_ORIGIN = re.compile(r'data-portal-origin="([^"]+)"')


async def discover(
    platform: Any, issuer_id: str, email: str | None, header: str | None
) -> httpx.Response:
    params = {"email": email} if email is not None else {}
    headers = {"Authpi-Portal": header} if header is not None else {}
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.get(
            f"{platform.idp_url}/{issuer_id}/sso/discover", params=params, headers=headers
        )


async def login_page_origin(platform: Any, issuer_id: str) -> str:
    async with httpx.AsyncClient(timeout=30) as http:
        page = await http.get(f"{platform.idp_url}/{issuer_id}/login")
    found = _ORIGIN.search(page.text)
    assert found, page.text
    return found.group(1)


async def directory_event(platform: Any, issuer_id: str, org_id: str, event: Any) -> None:
    """Appended to the organization's stream of the directory's event store, as the directory's
    domain verification (core-api.md 3.16) records it; the relay publishes it like any other."""
    rt = platform.handle.runtimes["directory"]
    schema = f"{platform.namespace}_directory"
    store = EventStore(rt.pool, schema, "directory", rt.ids)
    query = sql.SQL("SELECT max(stream_version) FROM {}.events WHERE stream_id = %s").format(
        schema_of(platform, "directory")
    )
    async with rt.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(query, [org_id])
        row = await cur.fetchone()
        assert row is not None and row[0] is not None
        meta = Meta(account_id=platform.account_id, issuer_id=issuer_id)
        await store.append(conn, org_id, row[0], [event], meta)


@pytest.fixture
async def tenant(platform, issuer_with_keys):
    admin, issuer_id = await issuer_with_keys(platform, "sso")
    yield admin, issuer_id
    await admin.close()


async def test_discovery_answers_the_portal_only(platform, tenant):
    _, issuer_id = tenant
    origin = await login_page_origin(platform, issuer_id)
    assert (await discover(platform, issuer_id, "a@example.com", origin)).json() == {"sso": False}
    key = platform.handle.runtimes["token"].kek.derive("portal-origin")
    expired = PortalOrigin(key, FixedClock(start_ms=1_000_000)).issue(issuer_id)
    other_issuer = part(platform, "portal_origin").issue("i_someoneelse")
    forged = origin.rsplit(".", 1)[0] + ".AAAA"
    for header in (None, "", "yes", expired, other_issuer, forged):
        answer = await discover(platform, issuer_id, "a@example.com", header)
        assert answer.status_code == 401, header
        assert answer.json()["error"] == "unauthorized_client"
        assert "sso" not in answer.json()
    missing = await discover(platform, issuer_id, None, origin)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    not_an_address = await discover(platform, issuer_id, "example.com", origin)
    assert not_an_address.status_code == 400
    unknown = await discover(platform, "i_nosuchissuer", "a@example.com", origin)
    assert unknown.status_code == 404


async def test_a_verified_domain_of_an_sso_organization_routes_there(platform, tenant):
    admin, issuer_id = tenant
    scope = admin.issuer(issuer_id)
    domain = f"acme-{uuid.uuid4().hex[:8]}.test"
    # SSO enabled, but the domain is not verified yet: it routes nothing.
    org = await scope.organizations.create({"name": "Acme", "sso": sso_config()})
    other = await scope.organizations.create({"name": "Other", "sso": sso_config(enabled=False)})
    origin = await login_page_origin(platform, issuer_id)
    address = f"Someone@{domain.upper()}"
    assert (await discover(platform, issuer_id, address, origin)).json() == {"sso": False}

    await directory_event(
        platform, issuer_id, org.id,
        OrganizationSsoDomainVerified(
            org_id=org.id, issuer_id=issuer_id, domain=domain, verified_at=1
        ),
    )  # fmt: skip
    routed = {
        "sso": True,
        "org_id": org.id,
        "connection_type": "oidc",
        "redirect_url": f"{platform.idp_url}/{issuer_id}/sso/start?org={org.id}",
    }

    async def answer(email: str) -> dict[str, Any]:
        return (await discover(platform, issuer_id, email, origin)).json()

    async def routes() -> bool:
        return await answer(address) == routed

    await eventually(routes)
    # The same for any address of the domain, whether or not a user holds it; nothing for a
    # subdomain or another domain.
    assert await answer(f"nobody-{uuid.uuid4().hex[:6]}@{domain}") == routed
    assert await answer(f"a@sub.{domain}") == {"sso": False}
    assert await answer("a@example.com") == {"sso": False}

    # The other organization verifies the domain too, later, without SSO: the first still wins.
    await directory_event(
        platform, issuer_id, other.id,
        OrganizationSsoDomainVerified(
            org_id=other.id, issuer_id=issuer_id, domain=domain, verified_at=2
        ),
    )  # fmt: skip
    await scope.organizations.update(org.id, {"status": "suspended"})
    assert await answer(address) == {"sso": False}  # suspended; the other has SSO disabled
    await scope.organizations.update(other.id, {"sso": {"enabled": True}})
    assert (await answer(address))["org_id"] == other.id
    assert (await answer(address))["connection_type"] == "oidc"
    await scope.organizations.update(org.id, {"status": "active"})
    assert (await answer(address))["org_id"] == org.id
    await scope.organizations.update(org.id, {"sso": {"enabled": False}})
    assert (await answer(address))["org_id"] == other.id

    await directory_event(
        platform, issuer_id, other.id,
        OrganizationSsoDomainDeleted(
            org_id=other.id, issuer_id=issuer_id, domain=domain, deleted_at=3
        ),
    )  # fmt: skip

    async def gone() -> bool:
        return await answer(address) == {"sso": False}

    await eventually(gone)
