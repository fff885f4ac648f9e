"""The portal's time rules on a platform of its own, driven by a FixedClock: a locked credential
stays locked for 15 minutes and then takes the right password again; a mailed login link stops
working after its 15 minutes."""

from __future__ import annotations

import time

import pytest_asyncio

from authpi.crypto.clock import FixedClock
from authpi.platform.testing.mail import Mailbox
from authpi.platform.testing.plugin import running_platform
from services.token.tests.integration.test_portal import PASSWORD, Browser, email, sign_up

MINUTE_MS = 60_000


@pytest_asyncio.fixture(scope="module")
async def clocked(infra, tmp_path_factory):
    clock = FixedClock(int(time.time() * 1000))
    async with running_platform(infra, tmp_path_factory.mktemp("portal"), clock) as platform:
        yield platform, clock


@pytest_asyncio.fixture(scope="module")
async def issuer_id(clocked, issuer_with_keys):
    platform, _ = clocked
    _, made = await issuer_with_keys(platform, "portal-clock")
    return made


async def test_lock_ends_after_fifteen_minutes(clocked, issuer_id):
    platform, clock = clocked
    address = email()
    async with Browser(platform, issuer_id) as b:
        await sign_up(b, address)
    async with Browser(platform, issuer_id) as b:
        for i in range(5):
            await b.submit("/login", {"email": address, "password": f"wrong-{i}"})
        clock.advance(ms=14 * MINUTE_MS)
        still = await b.submit("/login", {"email": address, "password": PASSWORD})
        clock.advance(ms=MINUTE_MS + 1000)
        again = await b.submit("/login", {"email": address, "password": PASSWORD})
    assert still.status_code == 403 and "locked" in still.text
    assert again.status_code == 303


async def test_login_link_expires_after_fifteen_minutes(clocked, issuer_id):
    platform, clock = clocked
    mailbox = Mailbox(platform.api_url)
    address = email()
    async with Browser(platform, issuer_id) as b:
        await sign_up(b, address)
    async with Browser(platform, issuer_id) as b:
        await b.submit("/login-link", {"email": address})
        link = (await mailbox.wait_for(to=address, subject_contains="sign-in link")).link(
            "/login-link/callback?token="
        )
        clock.advance(ms=15 * MINUTE_MS + 1000)
        late = await b.get(link)
    assert late.status_code == 410 and "expired" in late.text
