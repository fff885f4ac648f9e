"""Time rules of human login on a platform of its own, driven by a FixedClock: the code's 60
seconds, the session's 12-hour idle and 7-day absolute lifetimes (a refresh past either fails and
expires the session), and a refresh token that never outlives its session."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
import pytest_asyncio

from authpi.crypto.clock import FixedClock
from authpi.platform.testing.plugin import running_platform
from services.token.tests.integration.test_human_login import (
    SPA_CB,
    Tenant,
    make_tenant,
    pkce,
    raw_url,
    sign_in,
    token,
)

HOUR_MS = 3_600_000


@pytest_asyncio.fixture(scope="module")
async def clocked(infra, tmp_path_factory):
    clock = FixedClock(int(time.time() * 1000))
    async with running_platform(infra, tmp_path_factory.mktemp("login-clock"), clock) as platform:
        yield platform, clock


@pytest_asyncio.fixture
async def tenant(clocked, admin_of):
    platform, _ = clocked
    made = await make_tenant(platform, admin_of)
    yield made
    await made.admin.close()


async def code_of(t: Tenant) -> tuple[str, str]:
    verifier, challenge = pkce()
    callback, _ = await sign_in(t, raw_url(
        t, client_id=t.spa_id, redirect_uri=SPA_CB, response_type="code",
        scope="openid profile", code_challenge=challenge, code_challenge_method="S256",
    ))  # fmt: skip
    return callback["code"], verifier


async def exchange(t: Tenant, code: str, verifier: str) -> Any:
    return await token(t, {"grant_type": "authorization_code", "code": code,
                           "redirect_uri": SPA_CB, "client_id": t.spa_id,
                           "code_verifier": verifier})  # fmt: skip


async def refresh(t: Tenant, rt: str) -> Any:
    return await token(t, {"grant_type": "refresh_token", "client_id": t.spa_id,
                           "refresh_token": rt})  # fmt: skip


async def test_a_code_lives_60_seconds(clocked, tenant: Tenant):
    _, clock = clocked
    code, verifier = await code_of(tenant)
    clock.advance(ms=61_000)
    late = await exchange(tenant, code, verifier)
    assert late.status_code == 400
    assert late.json() == {"error": "invalid_grant", "error_description": "Code expired"}


async def test_idle_session_cannot_refresh_and_expires(clocked, tenant: Tenant):
    _, clock = clocked
    code, verifier = await code_of(tenant)
    tokens = (await exchange(tenant, code, verifier)).json()
    clock.advance(ms=11 * HOUR_MS)
    again = await refresh(tenant, tokens["refresh_token"])  # activity resets the idle timer
    assert again.status_code == 200
    clock.advance(ms=12 * HOUR_MS + 1000)
    idle = await refresh(tenant, again.json()["refresh_token"])
    assert idle.json()["error"] == "invalid_grant"
    sid = jwt.decode(tokens["access_token"], options={"verify_signature": False})["sid"]
    session = await tenant.admin.issuer(tenant.issuer_id).sessions.get(sid)
    assert session.status == "expired" and session.status_reason == "idle"


async def test_absolute_lifetime_wins_and_caps_the_refresh_token(clocked, tenant: Tenant):
    _, clock = clocked
    code, verifier = await code_of(tenant)
    tokens = (await exchange(tenant, code, verifier)).json()
    first = jwt.decode(tokens["refresh_token"], options={"verify_signature": False})
    session_end = first["iat"] + 7 * 86400
    rt = tokens["refresh_token"]
    for _ in range(15):  # 15 x 11 h = 6 days 21 h: still inside both limits
        clock.advance(ms=11 * HOUR_MS)
        resp = await refresh(tenant, rt)
        assert resp.status_code == 200, resp.text
        rt = resp.json()["refresh_token"]
        assert jwt.decode(rt, options={"verify_signature": False})["exp"] <= session_end + 1
    clock.advance(ms=4 * HOUR_MS)  # past 7 days, within the idle window
    ended = await refresh(tenant, rt)
    assert ended.json()["error"] == "invalid_grant"  # the token ended with its session
    await tenant.interactions.sessions.expire_lapsed()  # the minutely expiry task's round
    sid = first["sid"]
    session = await tenant.admin.issuer(tenant.issuer_id).sessions.get(sid)
    assert session.status == "expired" and session.status_reason == "max_age"


async def test_the_51st_session_expires_the_oldest(clocked, tenant: Tenant):
    from authpi.contracts.base import Meta
    from authpi.contracts.sessions import Device

    _, clock = clocked
    sessions = tenant.interactions.sessions
    meta = Meta(account_id=tenant.platform.account_id, issuer_id=tenant.issuer_id)
    opened = []
    for _ in range(51):
        clock.advance(ms=1000)
        session_id, _, _ = await sessions.open_op(
            issuer_id=tenant.issuer_id, account_id=tenant.platform.account_id,
            user_id=tenant.user_id, method="password", device=Device(), meta=meta,
        )  # fmt: skip
        opened.append(session_id)
    scope = tenant.admin.issuer(tenant.issuer_id)
    live = await scope.user(tenant.user_id).sessions.list(status="active")
    assert len(live.data) == 50 and opened[0] not in {s.id for s in live.data}
    oldest = await scope.sessions.get(opened[0])
    assert oldest.status == "expired" and oldest.status_reason == "evicted"


pytestmark = pytest.mark.usefixtures("clocked")
