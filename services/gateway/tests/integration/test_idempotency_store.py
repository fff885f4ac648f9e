"""The idempotency-key store on the real database with a fixed clock: 24-hour expiry and the
lease that frees a key whose first attempt never finished (core-api.md 2.4)."""

from __future__ import annotations

from authpi.crypto.clock import FixedClock
from authpi.gateway.idempotency import TTL_MS, Claimed, IdempotencyStore, InProgress, Stored


def store_for(platform, pool, clock: FixedClock) -> IdempotencyStore:
    return IdempotencyStore(pool, f"{platform.namespace}_gateway", clock, platform.handle.rt.kek)


async def test_idempotency_keys_expire_after_24_hours(platform, pool):
    clock = FixedClock()
    store = store_for(platform, pool, clock)
    claim = await store.claim("acc_expiry", "k1", "fp")
    assert isinstance(claim, Claimed)
    await store.complete("acc_expiry", "k1", claim.owner, Stored(201, [], b'{"data": {}}'))
    clock.advance(ms=TTL_MS - 1)
    replay = await store.claim("acc_expiry", "k1", "fp")
    assert isinstance(replay, Stored) and replay.body == b'{"data": {}}'
    clock.advance(ms=1)
    assert isinstance(await store.claim("acc_expiry", "k1", "other fp"), Claimed)
    assert await store.sweep() == 0  # the row was taken over, not left expired


async def test_an_abandoned_in_progress_key_is_taken_over_after_its_lease(platform, pool):
    clock = FixedClock()
    store = store_for(platform, pool, clock)
    assert isinstance(await store.claim("acc_lease", "k1", "fp"), Claimed)
    assert isinstance(await store.claim("acc_lease", "k1", "fp"), InProgress)
    clock.advance(seconds=301)
    assert isinstance(await store.claim("acc_lease", "k1", "fp"), Claimed)
