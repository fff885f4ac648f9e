"""`expired` is terminal (core-api.md 3.4). `PATCH {"expires_at": null}` on an expired key once
answered 200 and the key authenticated again. Expiry is derived from `expires_at` and the
platform's injected clock, so this platform runs on a clock the tests move (forward only; each
test expires a key of its own, so they share the platform)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from psycopg import sql

from authpi.crypto.clock import FixedClock
from authpi.platform.testing.plugin import RunningPlatform, running_platform
from authpi.platform.testing.tenants import key_ready, schema_of
from authpi.testing.infra import Infra

MINUTE = 60_000


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock()


@pytest_asyncio.fixture(scope="module")
async def timed(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory, clock: FixedClock
) -> AsyncIterator[RunningPlatform]:
    data_dir = tmp_path_factory.mktemp("expired-keys")
    async with running_platform(infra, data_dir, clock=clock) as running:
        yield running


async def events_of(platform: RunningPlatform, pool: Any, stream_id: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {}.events WHERE stream_id = %s").format(
        schema_of(platform, "directory")
    )
    async with pool.connection() as conn:
        cur = await conn.execute(query, [stream_id])
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def authenticates(platform: RunningPlatform, key_id: str, secret: str) -> bool:
    async with httpx.AsyncClient(base_url=platform.api_url, auth=(key_id, secret)) as http:
        return (await http.get("/v1/me")).status_code == 200


@pytest.mark.parametrize(
    "change",
    [
        {"expires_at": None},
        {"expires_at": "later"},
        {"restrictions": {"scopes": ["issuers:write"]}},
        {"status": "active"},
    ],
)
async def test_an_expired_key_cannot_be_revived(
    timed: RunningPlatform, pool: Any, clock: FixedClock, change: dict[str, Any]
) -> None:
    admin = (timed.api_key_id, timed.api_key_secret)
    base = f"{timed.api_url}/v1/accounts/{timed.account_id}"
    async with httpx.AsyncClient(base_url=base, auth=admin, timeout=30) as http:
        body = {"name": "short", "restrictions": {"scopes": ["issuers:read"]},
                "expires_at": clock.now_ms() + MINUTE}  # fmt: skip
        created = (await http.post("/api-keys", json=body)).json()["data"]
        key_id, secret = created["id"], created["secret_plain"]
        await key_ready(timed, key_id, secret)
        clock.advance(ms=2 * MINUTE)
        assert (await http.get(f"/api-keys/{key_id}")).json()["data"]["status"] == "expired"
        assert not await authenticates(timed, key_id, secret)
        before = await events_of(timed, pool, key_id)

        if change.get("expires_at") == "later":
            change = {"expires_at": clock.now_ms() + 60 * MINUTE}
        answer = await http.patch(f"/api-keys/{key_id}", json=change)

        assert answer.status_code == 409, answer.text
        assert answer.json()["error"] == "conflict"
        assert await events_of(timed, pool, key_id) == before
        assert (await http.get(f"/api-keys/{key_id}")).json()["data"]["status"] == "expired"
    assert not await authenticates(timed, key_id, secret)


async def test_an_expired_key_can_still_be_relabelled(
    timed: RunningPlatform, clock: FixedClock
) -> None:
    admin = (timed.api_key_id, timed.api_key_secret)
    base = f"{timed.api_url}/v1/accounts/{timed.account_id}"
    async with httpx.AsyncClient(base_url=base, auth=admin, timeout=30) as http:
        body = {"name": "short", "restrictions": {}, "expires_at": clock.now_ms() + MINUTE}
        key_id = (await http.post("/api-keys", json=body)).json()["data"]["id"]
        clock.advance(ms=2 * MINUTE)
        renamed = await http.patch(f"/api-keys/{key_id}", json={"name": "old ci key"})
        assert renamed.status_code == 200, renamed.text
        assert renamed.json()["data"]["status"] == "expired"
