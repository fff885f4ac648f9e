"""Bounded waits for ids that may be in flight: only freshly minted, well-formed ids wait, a
waiter wakes when its id arrives, and the number of waiters is capped."""

from __future__ import annotations

import asyncio

from authpi.crypto.ids import RandomIds, base36, uuid7
from authpi.gateway.caches.arrivals import MINTED_WITHIN_MS, Arrivals, minted_at, wall_ms

GUARD_S = 10.0  # only keeps a broken test from hanging; no assertion is about time


def key_minted(ms: int) -> str:
    return f"key_{uuid7(ms, bytes(10)):032x}"


def test_minted_at_reads_the_uuid7_time_of_well_formed_ids():
    ids = RandomIds()
    now = wall_ms()
    for prefix in ("key", "acc"):
        minted = minted_at(ids.new(prefix), prefix)
        assert minted is not None and abs(minted - now) < 60_000
    assert minted_at(key_minted(1_700_000_000_000), "key") == 1_700_000_000_000
    assert minted_at(f"acc_{base36(uuid7(1_700_000_000_000, bytes(10)))}", "acc") == (
        1_700_000_000_000
    )


def test_malformed_or_foreign_ids_have_no_time():
    for public_id in (
        "key_" + "0" * 32,  # not a UUIDv7
        "acc_" + "z" * 25,  # above 128 bits
        "acc_nope",
        "key_" + "A" * 32,  # upper case is never minted
        "key_" + "0_" * 16,  # int() would accept the underscores
        RandomIds().new("acc"),  # the wrong prefix for a key
        "",
    ):
        assert minted_at(public_id, "key") is None


def test_only_recent_ids_may_be_in_flight():
    now = 1_800_000_000_000
    arrivals = Arrivals("key", now_ms=lambda: now)
    assert arrivals.may_be_in_flight(key_minted(now - 1000))
    assert not arrivals.may_be_in_flight(key_minted(now - MINTED_WITHIN_MS - 1))
    assert not arrivals.may_be_in_flight(key_minted(now + 3_600_000))
    assert not arrivals.may_be_in_flight("key_" + "0" * 32)


async def test_a_waiter_wakes_when_its_id_arrives():
    arrivals = Arrivals("key")
    key_id = RandomIds().new("key")
    known: set[str] = set()
    waiting = [
        asyncio.create_task(arrivals.wait(key_id, GUARD_S, lambda: key_id in known))
        for _ in range(3)
    ]
    await asyncio.sleep(0)
    known.add(key_id)
    arrivals.arrived(key_id)
    assert await asyncio.wait_for(asyncio.gather(*waiting), GUARD_S) == [True, True, True]
    assert arrivals._waiting == {} and arrivals._count == 0


async def test_an_id_that_never_arrives_is_refused_after_the_wait():
    arrivals = Arrivals("key")
    assert await arrivals.wait(RandomIds().new("key"), 0.05, lambda: False) is False
    assert arrivals._waiting == {} and arrivals._count == 0


async def test_old_or_random_ids_and_waiters_beyond_the_limit_do_not_wait():
    arrivals = Arrivals("key", limit=2)
    never = asyncio.Event()  # a wait that is not refused at once would outlive the guard
    for public_id in ("key_" + "0" * 32, key_minted(wall_ms() - 2 * MINTED_WITHIN_MS)):
        refused = await asyncio.wait_for(arrivals.wait(public_id, 3600, never.is_set), GUARD_S)
        assert refused is False
    fresh = [RandomIds().new("key") for _ in range(3)]
    held = [asyncio.create_task(arrivals.wait(k, 3600, never.is_set)) for k in fresh[:2]]
    await asyncio.sleep(0)
    assert await asyncio.wait_for(arrivals.wait(fresh[2], 3600, never.is_set), GUARD_S) is False
    assert arrivals.refused == 1
    for task in held:
        task.cancel()
    await asyncio.gather(*held, return_exceptions=True)
    assert arrivals._count == 0
