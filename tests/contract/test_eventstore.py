"""The event store: optimistic concurrency, append-only enforcement, folding with a decider."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from psycopg import sql

from authpi.directory.domain import account
from authpi.directory.domain.commands.account import CreateAccount
from authpi.errors import Conflict, VersionConflict
from authpi.eventstore.store import EventStore, Step
from authpi.testing.probe import PROBE_META, ProbeCommand, ProbeDecider, probe_event


async def test_concurrent_appends_at_same_version_exactly_one_wins(pool, schema):
    store = EventStore(pool, schema, "test")

    async def attempt(i: int) -> str:
        async with pool.connection() as conn, conn.transaction():
            await store.load(conn, "stream-race")
            try:
                await store.append(
                    conn, "stream-race", 0, [probe_event("stream-race", i)], PROBE_META
                )
                return "won"
            except VersionConflict:
                return "conflict"

    results = await asyncio.gather(*(attempt(i) for i in range(50)))
    assert results.count("won") == 1
    assert results.count("conflict") == 49
    async with pool.connection() as conn:
        history = await store.load(conn, "stream-race")
    assert [e.stream_version for e in history] == [1]


async def test_append_with_stale_expected_version_raises_conflict(pool, schema):
    store = EventStore(pool, schema, "test")
    async with pool.connection() as conn, conn.transaction():
        await store.append(conn, "s1", 0, [probe_event("s1"), probe_event("s1", 1)], PROBE_META)
    with pytest.raises(VersionConflict):
        async with pool.connection() as conn, conn.transaction():
            await store.append(conn, "s1", 1, [probe_event("s1", 2)], PROBE_META)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {}.events SET type = 'x'",
        "DELETE FROM {}.events",
        "TRUNCATE {}.events",
    ],
)
async def test_update_delete_truncate_on_events_are_refused(pool, schema, statement):
    store = EventStore(pool, schema, "test")
    async with pool.connection() as conn, conn.transaction():
        await store.append(conn, "s1", 0, [probe_event("s1")], PROBE_META)
    with pytest.raises(psycopg.errors.RestrictViolation):
        async with pool.connection() as conn:
            await conn.execute(sql.SQL(statement).format(sql.Identifier(schema)))
    async with pool.connection() as conn:
        assert len(await store.load(conn, "s1")) == 1


async def test_execute_folds_history_and_repeated_command_appends_nothing(pool, schema, clock):
    store = EventStore(pool, schema, "test")
    cmd = CreateAccount(account_id="acc_1", org_id="org_1", name="A", owner_user_id=None, now=1)
    first = await store.execute("acc_1", account, cmd, PROBE_META)
    again = await store.execute("acc_1", account, cmd, PROBE_META)
    assert [e.type for e in first.events] == ["account.created"]
    assert again.events == []
    assert isinstance(again.state, account.Open) and again.version == 1
    other = CreateAccount(account_id="acc_2", org_id="org_2", name="B", owner_user_id=None, now=1)
    with pytest.raises(Conflict):
        await store.execute("acc_1", account, other, PROBE_META)


async def test_execute_all_is_one_transaction(pool, schema):
    store = EventStore(pool, schema, "test")

    async def explode(tx):  # an inline reaction failing after both appends
        raise RuntimeError("boom")

    steps = [
        Step("a", ProbeDecider("a"), ProbeCommand()),
        Step("b", ProbeDecider("b"), ProbeCommand()),
    ]
    with pytest.raises(RuntimeError):
        await store.execute_all(steps, PROBE_META, [explode])
    async with pool.connection() as conn:
        assert await store.load(conn, "a") == [] and await store.load(conn, "b") == []


async def test_concurrent_execute_on_one_stream_serialises_versions(pool, schema):
    store = EventStore(pool, schema, "test")
    decider = ProbeDecider("hot")
    results = await asyncio.gather(
        *(
            store.execute("hot", decider, ProbeCommand(), PROBE_META, attempts=50)
            for _ in range(20)
        ),
        return_exceptions=True,
    )
    wins = [r for r in results if not isinstance(r, Exception)]
    async with pool.connection() as conn:
        history = await store.load(conn, "hot")
    assert [e.stream_version for e in history] == list(range(1, len(wins) + 1))
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception))


async def test_execute_all_works_out_its_steps_inside_the_transaction(pool, schema):
    """Steps may depend on what is read under `prepare`'s lock; a retry works them out again."""
    store = EventStore(pool, schema, "test")
    seen: list[str] = []

    async def lock(tx):
        seen.append("prepare")

    async def plan(tx):
        seen.append("plan")
        return [Step(s, ProbeDecider(s), ProbeCommand()) for s in ("p1", "p2")]

    outcomes = await store.execute_all(plan, PROBE_META, prepare=lock)
    assert seen == ["prepare", "plan"]
    assert [len(o.events) for o in outcomes] == [1, 1]
    async with pool.connection() as conn:
        assert len(await store.load(conn, "p1")) == 1 and len(await store.load(conn, "p2")) == 1


async def test_execute_all_in_a_callers_transaction_commits_or_rolls_back_with_it(pool, schema):
    store = EventStore(pool, schema, "test")
    steps = [Step("c1", ProbeDecider("c1"), ProbeCommand())]
    with pytest.raises(RuntimeError):
        async with pool.connection() as conn, conn.transaction():
            await store.execute_all(steps, PROBE_META, conn=conn)
            raise RuntimeError("the caller fails after the append")
    async with pool.connection() as conn:
        assert await store.load(conn, "c1") == []
    async with pool.connection() as conn, conn.transaction():
        outcomes = await store.execute_all(steps, PROBE_META, conn=conn)
    assert [e.stream_version for e in outcomes[0].events] == [1]
    async with pool.connection() as conn:
        assert len(await store.load(conn, "c1")) == 1
