"""Group commit (EventStore.execute_each): many one-stream commands in one transaction, each
with its own optimistic concurrency, a refusal or conflict failing only its own command."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from authpi.errors import VersionConflict
from authpi.eventstore.store import EventStore, Outcome, Planned, Step, Tx
from authpi.testing.probe import PROBE_META, ProbeCommand, ProbeDecider, probe_event


def steps(*streams: str) -> list[Planned]:
    return [(Step(s, ProbeDecider(s), ProbeCommand()), PROBE_META) for s in streams]


async def versions(store: EventStore, pool: Any, *streams: str) -> dict[str, list[int]]:
    async with pool.connection() as conn:
        found = await store.load_many(conn, list(streams))
    return {s: [e.stream_version for e in h] for s, h in found.items()}


async def test_many_streams_append_in_one_transaction(pool, schema):
    store = EventStore(pool, schema, "test")
    async with pool.connection() as conn, conn.transaction():
        await store.append(conn, "b", 0, [probe_event("b")], PROBE_META)

    async def plan(tx: Tx) -> list[Planned]:
        return steps("a", "b", "c")

    results = await store.execute_each(plan)
    assert [r.version for r in results if isinstance(r, Outcome)] == [1, 2, 1]
    assert all(len(r.events) == 1 for r in results if isinstance(r, Outcome))
    assert len({r.events[0].tx_id for r in results if isinstance(r, Outcome)}) == 1
    assert await versions(store, pool, "a", "b", "c") == {"a": [1], "b": [1, 2], "c": [1]}


async def test_a_refusal_and_a_taken_version_fail_only_their_own_command(pool, schema):
    store = EventStore(pool, schema, "test")
    refusal = ValueError("refused by its check")

    async def plan(tx: Tx) -> list[Planned]:
        planned = steps("x", "y")
        # Another writer takes y's next version before this batch loads and appends it.
        async with pool.connection() as other, other.transaction():
            await store.append(other, "y", 0, [probe_event("y")], PROBE_META)
        return [planned[0], refusal, planned[1]]

    results = await store.execute_each(plan)
    assert isinstance(results[0], Outcome) and results[0].version == 1
    assert results[1] is refusal
    assert isinstance(results[2], Outcome) and results[2].version == 2
    assert await versions(store, pool, "x", "y") == {"x": [1], "y": [1, 2]}


async def test_a_version_taken_after_the_load_fails_only_that_command(pool, schema):
    store = EventStore(pool, schema, "test")
    async with pool.connection() as other, other.transaction():
        # Another writer holds z's version 1, not yet committed: the batch loads z empty, and
        # its insert waits for that writer, then skips z's row once it commits.
        await store.append(other, "z", 0, [probe_event("z")], PROBE_META)

        async def plan(tx: Tx) -> list[Planned]:
            return steps("w", "z")

        batch = asyncio.create_task(store.execute_each(plan))
        while not await waiting_on_a_transaction(pool):
            await asyncio.sleep(0.01)
    results = await batch
    assert isinstance(results[0], Outcome) and results[0].version == 1
    assert isinstance(results[1], VersionConflict)
    assert await versions(store, pool, "w", "z") == {"w": [1], "z": [1]}


async def waiting_on_a_transaction(pool: Any) -> bool:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted"
        )
        row = await cur.fetchone()
    return bool(row and row[0])


async def test_concurrent_batches_on_one_stream_exactly_one_appends(pool, schema):
    store = EventStore(pool, schema, "test")

    async def batch(i: int) -> list[Outcome[Any] | BaseException]:
        async def plan(tx: Tx) -> list[Planned]:
            # Each batch shares the raced stream and has its own, in two orders.
            own = [f"own-{i}-{k}" for k in range(3)]
            return steps(*(["race", *own] if i % 2 else [*own, "race"]))

        return await store.execute_each(plan)

    results = await asyncio.gather(*(batch(i) for i in range(8)))
    race = [r[0] if i % 2 else r[3] for i, r in enumerate(results)]
    # Of the batches that loaded "race" at one version, one appended the next; the others lost
    # that command alone (VersionConflict), never their own streams.
    won = sorted(r.version for r in race if isinstance(r, Outcome))
    lost = [r for r in race if isinstance(r, VersionConflict)]
    assert len(won) + len(lost) == 8
    assert (await versions(store, pool, "race"))["race"] == won == list(range(1, len(won) + 1))
    own = [r for i, rs in enumerate(results) for k, r in enumerate(rs) if k != (0 if i % 2 else 3)]
    assert all(isinstance(r, Outcome) and r.version == 1 for r in own)


async def test_two_commands_on_one_stream_are_refused(pool, schema):
    store = EventStore(pool, schema, "test")

    async def plan(tx: Tx) -> list[Planned]:
        return steps("d", "d")

    with pytest.raises(ValueError):
        await store.execute_each(plan)
    assert await versions(store, pool, "d") == {"d": []}
