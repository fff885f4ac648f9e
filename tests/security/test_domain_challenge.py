"""Domain verification proves control of the host's DNS (core-api.md 3.3). It once accepted any
host that resolved to this deployment, and an unverified claim held a host forever, so an account
could squat on a domain it did not own. Now the account publishes its own TXT challenge at
`_authpi-challenge.<host>`, and an unverified claim lapses after 7 days (by the platform's
clock), when another account may take the host. The platform's real DNS probe asks a DNS server
of the test's own, over the DNS wire protocol."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from authpi.crypto.clock import FixedClock
from authpi.platform.testing.dns import Zone, open_zone
from authpi.platform.testing.plugin import RunningPlatform, running_platform
from authpi.platform.testing.tenants import count_events, new_account, part
from authpi.testing.infra import Infra

DAY = 24 * 3600 * 1000


@pytest.fixture
async def zone() -> AsyncIterator[tuple[Zone, int]]:
    async with open_zone() as opened:
        yield opened, opened.port


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
async def timed(
    infra: Infra, tmp_path: Path, clock: FixedClock, zone: tuple[Zone, int]
) -> AsyncIterator[RunningPlatform]:
    """A platform of its own on a clock the test moves, asking the test's DNS server."""
    async with running_platform(infra, tmp_path, clock=clock) as running:
        domains = part(running, "account_domains")
        domains.probe = zone[0].probe()
        yield running


async def account_client(platform: RunningPlatform) -> httpx.AsyncClient:
    account_id, key = await new_account(platform, f"dom-{uuid.uuid4().hex[:6]}")
    base = f"{platform.api_url}/v1/accounts/{account_id}"
    return httpx.AsyncClient(base_url=base, auth=key, timeout=30)


def entry(response: httpx.Response, host: str) -> dict[str, Any]:
    assert response.status_code < 300, response.text
    return next(d for d in response.json()["data"]["domains"] if d["host"] == host)


def new_host() -> str:
    return f"auth-{uuid.uuid4().hex[:10]}.example.com"


async def test_a_host_verifies_with_its_accounts_txt_challenge(
    timed: RunningPlatform, zone: tuple[Zone, int]
) -> None:
    host = new_host()
    async with await account_client(timed) as owner:
        added = entry(await owner.post("/domains", json={"host": host}), host)
        challenge = added["verification"]
        assert added["verified"] is False
        assert challenge["type"] == "dns-txt" and challenge["name"] == f"_authpi-challenge.{host}"
        assert challenge["expires_at"] == added["added_at"] + 7 * DAY
        zone[0].txt[challenge["name"]] = ["v=spf1 -all", challenge["value"]]
        done = entry(await owner.post(f"/domains/{host}/verify"), host)
    assert done["verified"] is True and done["verification"] is None


async def test_resolving_here_or_another_accounts_challenge_does_not_verify(
    timed: RunningPlatform, pool: Any, zone: tuple[Zone, int]
) -> None:
    host, elsewhere = new_host(), new_host()
    async with await account_client(timed) as squatter, await account_client(timed) as owner:
        # The real owner's challenge for the host, published in the host's DNS.
        published = entry(await owner.post("/domains", json={"host": host}), host)["verification"]
        zone[0].txt[published["name"]] = [published["value"]]
        await owner.delete(f"/domains/{host}")
        # The squatter claims the host, which resolves to this deployment, and another one.
        zone[0].a[host] = "127.0.0.1"
        assert (await squatter.post("/domains", json={"host": host})).status_code == 201
        mine = entry(await squatter.post("/domains", json={"host": elsewhere}), elsewhere)
        # Its own challenge for another host, published at this one, proves nothing here.
        zone[0].txt[f"_authpi-challenge.{host}"].append(mine["verification"]["value"])
        before = await count_events(timed, pool, "directory")
        refused = await squatter.post(f"/domains/{host}/verify")
        assert refused.status_code == 409, refused.text
        assert await count_events(timed, pool, "directory") == before
        assert entry(await squatter.get(""), host)["verified"] is False


async def test_an_unverified_claim_lapses_and_another_account_takes_the_host(
    timed: RunningPlatform, clock: FixedClock, zone: tuple[Zone, int]
) -> None:
    host = new_host()
    async with await account_client(timed) as first, await account_client(timed) as second:
        claim = entry(await first.post("/domains", json={"host": host}), host)["verification"]
        clock.advance(ms=claim["expires_at"] - 1 - clock.now_ms())
        assert (await second.post("/domains", json={"host": host})).status_code == 409
        clock.advance(ms=1)
        lapsed = await first.post(f"/domains/{host}/verify")
        assert lapsed.status_code == 409 and "expired" in lapsed.json()["error_description"]

        taken = entry(await second.post("/domains", json={"host": host}), host)
        assert [d["host"] for d in (await first.get("/domains")).json()["data"]] == []
        zone[0].txt[taken["verification"]["name"]] = [taken["verification"]["value"]]
        assert entry(await second.post(f"/domains/{host}/verify"), host)["verified"] is True
        assert (await first.post("/domains", json={"host": host})).status_code == 409


async def test_a_verified_host_never_lapses(
    timed: RunningPlatform, clock: FixedClock, zone: tuple[Zone, int]
) -> None:
    host = new_host()
    async with await account_client(timed) as owner, await account_client(timed) as other:
        challenge = entry(await owner.post("/domains", json={"host": host}), host)["verification"]
        zone[0].txt[challenge["name"]] = [challenge["value"]]
        assert entry(await owner.post(f"/domains/{host}/verify"), host)["verified"] is True
        clock.advance(ms=30 * DAY)
        assert (await other.post("/domains", json={"host": host})).status_code == 409
        assert entry(await owner.get(""), host)["verified"] is True
