"""Organization SSO from the outside, for end-to-end tests over the `platform` fixture: an issuer
and its clients (testing.login), an independent upstream OpenID Provider (testing.upstream) with
one well-behaved client and one per misbehaviour, and a DNS zone (testing.dns) in which each
organization publishes its TXT challenge so that its domain verifies for real. A person's sign-in
through the upstream is driven over HTTP by `sso_sign_in` (a Chromium test drives it itself)."""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from authpi.platform.testing import upstream
from authpi.platform.testing.dns import Zone, dns_zone
from authpi.platform.testing.login import LoginTenant, PortalBrowser, login_tenant
from authpi.platform.testing.running import RunningPlatform
from authpi.platform.testing.upstream import UpstreamClient, UpstreamIdp, sso_config
from authpi.testing.plugin import eventually

GOOD = "authpi-good"
MISBEHAVING = ("tampered", "nonce", "audience", "expired")
_ORIGIN = re.compile(r'data-portal-origin="([^"]+)"')
HOPS = 16


@dataclass
class SsoOrg:
    id: str
    domain: str
    client_id: str

    def email(self, prefix: str = "jo") -> str:
        return f"{prefix}-{secrets.token_hex(4)}@{self.domain}"


@dataclass
class SsoWorld:
    platform: RunningPlatform
    tenant: LoginTenant
    upstream: UpstreamIdp
    zone: Zone

    @property
    def scope(self) -> Any:
        return self.tenant.admin.issuer(self.tenant.issuer_id)

    async def organization(
        self,
        *,
        client_id: str = GOOD,
        sso_only: bool = False,
        verify: bool = True,
        security: dict[str, Any] | None = None,
    ) -> SsoOrg:
        """An organization whose SSO goes to the upstream as `client_id` (and with `security`,
        when given), with a fresh domain: added, and unless `verify` is False published in the
        zone, verified and routed."""
        client = self.upstream.clients[client_id]
        tag = secrets.token_hex(5)
        org = await self.scope.organizations.create({
            "name": f"Acme {tag}", "default_member_scopes": ["member"],
            "scopes": ["member", "owner"],
            "sso": sso_config(issuer_url=self.upstream.issuer, client_id=client.client_id,
                              client_secret=client.client_secret, sso_only=sso_only),
            **({"security": security} if security is not None else {}),
        })  # fmt: skip
        domain = f"sso-{tag}.example.com"
        sso = self.scope.organization(org.id).sso
        added = await sso.add_domain({"domain": domain})
        if verify:
            self.zone.txt[added.txt_record_name] = [added.txt_record_value]
            assert (await sso.verify_domain(domain)).verified is True
            await eventually(lambda: self._routes(domain, org.id))
        return SsoOrg(id=org.id, domain=domain, client_id=client_id)

    async def discover(self, email: str) -> dict[str, Any]:
        """`/{issuer}/sso/discover` as the login page calls it (with its Authpi-Portal value)."""
        url = self.tenant.issuer_url
        async with httpx.AsyncClient(timeout=30) as http:
            page = await http.get(f"{url}/login")
            found = _ORIGIN.search(page.text)
            assert found is not None, page.text
            answer = await http.get(
                f"{url}/sso/discover", params={"email": email},
                headers={"Authpi-Portal": found.group(1)},
            )  # fmt: skip
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def _routes(self, domain: str, org_id: str) -> bool:
        return (await self.discover(f"probe@{domain}")).get("org_id") == org_id

    async def events(self, event_types: str, **filters: str) -> list[Any]:
        """The Events API's events of the issuer of these types (newest first)."""
        page = await self.tenant.admin.events.list(
            issuer_id=self.tenant.issuer_id, event_types=event_types, limit=100, **filters
        )
        return list(page.data)


@contextlib.asynccontextmanager
async def sso_world(
    platform: RunningPlatform, workdir: Path, *, redirect_uri: str
) -> AsyncIterator[SsoWorld]:
    """An issuer whose clients redirect to `redirect_uri`, the upstream (a good client and one
    per misbehaviour, all redirecting to the issuer's SSO callback) and the DNS zone."""
    tenant = await login_tenant(platform, name="sso", redirect_uri=redirect_uri)
    callback = f"{tenant.issuer_url}/sso/callback"
    clients = [UpstreamClient(client_id=GOOD, client_secret=secrets.token_urlsafe(24))] + [
        UpstreamClient(client_id=f"authpi-{mode}", client_secret=secrets.token_urlsafe(24),
                       mode=mode)
        for mode in MISBEHAVING
    ]  # fmt: skip
    outsider = upstream.UpstreamAccount(login="outsider", email="outsider@elsewhere.example")
    try:
        with upstream.upstream_idp(
            workdir, redirect_uris=[callback], clients=clients, accounts=[outsider]
        ) as idp:
            async with dns_zone(platform) as zone:
                yield SsoWorld(platform=platform, tenant=tenant, upstream=idp, zone=zone)
    finally:
        await tenant.admin.close()


def _path(url: str) -> str:
    return urlsplit(url).path


async def sso_sign_in(
    browser: PortalBrowser,
    start: str,
    *,
    email: str,
    redirect_uri: str,
    login: str | None = None,
    password: str = "",
    upstream_password: str = upstream.PASSWORD,
    consent: str = "allow",
    stop_at: str | None = None,
) -> str | httpx.Response:
    """Follow a sign-in from `start` (an authorization request, or the login page) as a person
    would: the portal's login page with `email` (and `password`, empty by default: SSO), the
    upstream's sign-in form (as `login`, by default the address), the consent page; returns the
    URL the browser is sent to at `redirect_uri` (or to a path ending with `stop_at`, unvisited),
    or the first answer that is not a redirect (e.g. the page saying why a sign-in was
    refused)."""
    if _path(start).endswith("/login"):  # the login page itself: its form first
        response = await browser.submit(start, {"email": email, "password": password})
    else:
        response = await browser.get(start)
    for _ in range(HOPS):
        location = _next(response)
        if location is None:
            return response
        if location.startswith(redirect_uri) or (stop_at and _path(location).endswith(stop_at)):
            return location
        path = _path(location)
        if path.endswith("/login") and "/interaction/" not in path:
            response = await browser.submit(location, {"email": email, "password": password})
        elif "/interaction/" in path:
            values = {"login": login or email, "password": upstream_password}
            response = await browser.submit(location, values)
        elif path.endswith("/consent"):
            response = await browser.submit(location, {}, button=consent)
        else:
            response = await browser.get(location)
    raise AssertionError(f"no end after {HOPS} hops; trail {browser.trail}")


def _next(response: httpx.Response) -> str | None:
    if response.status_code not in (301, 302, 303, 307):
        return None
    return urljoin(str(response.url), response.headers["location"])
