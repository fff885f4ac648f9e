"""The gateway's key cache follows the directory: a key blocked or revoked through the directory
stops authenticating within a second, expiry, rotation grace and IP allowlists are honoured."""

from __future__ import annotations

import time

import httpx

from authpi.contracts.base import Actor
from authpi.directory.handlers.api_keys import KeyRestrictions
from authpi.platform.testing.tenants import basic
from authpi.testing.plugin import eventually

ADMIN = Actor(type="system")


async def status_of(platform, key_id: str, secret: str, **headers: str) -> int:
    async with httpx.AsyncClient(base_url=platform.api_url) as http:
        resp = await http.get("/v1/me", headers={**basic(key_id, secret), **headers})
    return resp.status_code


async def test_new_key_authenticates_at_once(platform, directory):
    key = await directory.create_api_key(platform.account_id, "fresh", [], actor=ADMIN)
    assert await status_of(platform, key.key_id, key.secret) == 200


async def test_blocked_key_stops_within_a_second_and_unblocked_works_again(
    platform, directory, gateway
):
    key = await directory.create_api_key(platform.account_id, "to block", [], actor=ADMIN)
    assert await status_of(platform, key.key_id, key.secret) == 200

    await directory.block_api_key(platform.account_id, key.key_id, actor=ADMIN)

    async def refused() -> bool:
        return await status_of(platform, key.key_id, key.secret) == 401

    await eventually(refused, timeout=1.0, interval=0.02)
    assert gateway.api_keys.get(key.key_id).status == "blocked"

    await directory.unblock_api_key(platform.account_id, key.key_id, actor=ADMIN)

    async def accepted() -> bool:
        return await status_of(platform, key.key_id, key.secret) == 200

    await eventually(accepted, timeout=1.0, interval=0.02)


async def test_revoked_key_stops_within_a_second(platform, directory):
    key = await directory.create_api_key(platform.account_id, "to revoke", [], actor=ADMIN)
    assert await status_of(platform, key.key_id, key.secret) == 200

    await directory.revoke_api_key(platform.account_id, key.key_id, actor=ADMIN)

    async def refused() -> bool:
        return await status_of(platform, key.key_id, key.secret) == 401

    await eventually(refused, timeout=1.0, interval=0.02)


async def test_expired_key_is_refused(platform, directory):
    past = KeyRestrictions(expires_at=int(time.time() * 1000) - 1)
    key = await directory.create_api_key(
        platform.account_id, "expired", [], actor=ADMIN, restrictions=past
    )
    async with httpx.AsyncClient(base_url=platform.api_url) as http:
        resp = await http.get("/v1/me", headers=basic(key.key_id, key.secret))
    assert resp.status_code == 401
    assert resp.json()["error"] == "unauthorized_client"
    assert "expired" in resp.json()["error_description"]


async def test_rotated_key_accepts_new_and_previous_secret_during_grace(platform, directory):
    key = await directory.create_api_key(platform.account_id, "to rotate", [], actor=ADMIN)
    rotated = await directory.rotate_api_key(platform.account_id, key.key_id, actor=ADMIN)
    assert rotated.secret != key.secret

    async def new_secret_works() -> bool:
        return await status_of(platform, key.key_id, rotated.secret) == 200

    await eventually(new_secret_works, timeout=1.0, interval=0.02)
    assert await status_of(platform, key.key_id, key.secret) == 200
    assert await status_of(platform, key.key_id, "some-other-secret") == 401


async def test_ip_allowlist_admits_listed_networks_only(platform, directory):
    listed = KeyRestrictions(ip_allowlist=("203.0.113.0/24", "2001:db8::/32"))
    key = await directory.create_api_key(
        platform.account_id, "office only", [], actor=ADMIN, restrictions=listed
    )
    # The session platform trusts X-Forwarded-For from 127.0.0.1 (AUTHPI_TRUSTED_PROXIES).
    assert await status_of(platform, key.key_id, key.secret) == 403
    via = {"X-Forwarded-For": "203.0.113.9"}
    assert await status_of(platform, key.key_id, key.secret, **via) == 200
    via = {"X-Forwarded-For": "2001:db8::7"}
    assert await status_of(platform, key.key_id, key.secret, **via) == 200
    via = {"X-Forwarded-For": "198.51.100.1"}
    assert await status_of(platform, key.key_id, key.secret, **via) == 403


async def test_refused_ip_gets_access_denied_body(platform, directory):
    listed = KeyRestrictions(ip_allowlist=("203.0.113.0/24",))
    key = await directory.create_api_key(
        platform.account_id, "office", [], actor=ADMIN, restrictions=listed
    )
    async with httpx.AsyncClient(base_url=platform.api_url) as http:
        resp = await http.get("/v1/me", headers=basic(key.key_id, key.secret))
    assert resp.status_code == 403
    assert resp.json()["error"] == "access_denied"
