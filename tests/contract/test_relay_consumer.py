"""The relay and the consumer runtime against real PostgreSQL and NATS JetStream: commit order,
late commits, many concurrent writers, duplicates, poison messages and replay."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import msgspec
import psycopg
from psycopg import sql

from authpi.contracts.base import Envelope
from authpi.contracts.subjects import events_stream, subject_for
from authpi.eventstore.locks import consumer_lock
from authpi.eventstore.relay import Relay
from authpi.eventstore.replay import replay
from authpi.eventstore.store import EventStore
from authpi.messaging.consumer import ProjectionConsumer
from authpi.testing.plugin import eventually, running
from authpi.testing.probe import (
    PROBE_META,
    PROBE_SOURCE,
    ProbeCommand,
    ProbeDecider,
    ProbeProjection,
    probe_event,
)
from authpi.testing.scans import rows_read


async def stream_messages(js, namespace: str) -> list[Envelope]:
    info = await js.stream_info(events_stream(namespace))
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(events_stream(namespace), seq)
        out.append(msgspec.json.decode(msg.data, type=Envelope))
    return out


async def applied(pool, schema: str) -> list[tuple[str, int, int]]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            sql.SQL(
                "SELECT stream_id, stream_version, applied_count FROM {}.probe_applied"
                " ORDER BY apply_order"
            ).format(sql.Identifier(schema))
        )
        return await cur.fetchall()


async def probed(
    infra, pool, nc, schema: str, namespace: str
) -> tuple[EventStore, Relay, Callable[[], ProjectionConsumer]]:
    """The probe's store, its relay, and a maker of copies (replicas) of its projection's
    consumer, the projection's table created."""
    js = nc.jetstream()
    probe = ProbeProjection(schema)
    async with pool.connection() as conn:
        await probe.create(conn)

    def replica() -> ProjectionConsumer:
        return ProjectionConsumer(
            js=js, pool=pool, dsn=infra.dsn, projection=probe, namespace=namespace
        )

    relay = Relay(infra.dsn, schema, PROBE_SOURCE, js, namespace)
    return EventStore(pool, schema, "test"), relay, replica


async def test_late_commit_with_lower_position_is_published_first(
    infra, pool, nc, schema, namespace
):
    js = nc.jetstream()
    store = EventStore(pool, schema, "test")
    relay = Relay(infra.dsn, schema, PROBE_SOURCE, js, namespace)
    async with (
        await psycopg.AsyncConnection.connect(infra.dsn) as a,
        await psycopg.AsyncConnection.connect(infra.dsn) as b,
    ):
        await store.load(a, "stream-a")
        await store.append(
            a, "stream-a", 0, [probe_event("stream-a")], PROBE_META
        )  # A: lower position
        await store.load(b, "stream-b")
        b_events = await store.append(b, "stream-b", 0, [probe_event("stream-b")], PROBE_META)
        await b.commit()  # B commits first
        async with await psycopg.AsyncConnection.connect(infra.dsn, autocommit=True) as conn:
            cursor = await relay.drain(conn, (0, 0))
            assert cursor == (0, 0), "B must wait: A is still in flight below it"
            await a.commit()  # A commits last
            cursor = await relay.drain(conn, cursor)
    published = await stream_messages(js, namespace)
    assert [m.stream_id for m in published] == ["stream-a", "stream-b"]
    assert published[0].position < b_events[0].position
    assert cursor == (published[1].tx_id, published[1].position)


async def test_many_concurrent_writers_every_event_applied_once_in_stream_order(
    infra, pool, nc, schema, namespace
):
    store, relay, replica = await probed(infra, pool, nc, schema, namespace)
    consumer = replica()
    tasks, per_task, streams = 20, 200, [f"s{i}" for i in range(40)]

    async def writer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(per_task):
            sid = rng.choice(streams)
            await store.execute(sid, ProbeDecider(sid), ProbeCommand(), PROBE_META, attempts=100)

    async with running(relay, consumer):
        await asyncio.gather(*(writer(i) for i in range(tasks)))

        async def all_applied():
            rows = await applied(pool, schema)
            return rows if len(rows) >= tasks * per_task else None

        rows = await eventually(all_applied, timeout=120)
        info = await eventually(lambda: _settled(consumer.js, namespace, consumer.durable))
    assert info.num_redelivered == 0, "a batch's messages were delivered again"
    assert len(rows) == tasks * per_task
    assert max(r[2] for r in rows) == 1, "an event was applied twice"
    assert relay.published == tasks * per_task, "the relay published an event twice"
    seen: dict[str, int] = {}
    for stream_id, version, _ in rows:
        assert version == seen.get(stream_id, 0) + 1, f"{stream_id} applied out of order"
        seen[stream_id] = version


async def test_duplicate_delivery_is_applied_once(infra, pool, nc, schema, namespace):
    js = nc.jetstream()
    store = EventStore(pool, schema, "test")
    probe = ProbeProjection(schema)
    async with pool.connection() as conn:
        await probe.create(conn)
    await store.execute("dup", ProbeDecider("dup"), ProbeCommand(3), PROBE_META)
    relay = Relay(infra.dsn, schema, PROBE_SOURCE, js, namespace)
    consumer = ProjectionConsumer(
        js=js, pool=pool, dsn=infra.dsn, projection=probe, namespace=namespace
    )
    async with running(relay, consumer):
        await eventually(lambda: _count(pool, schema, 3))
        # Re-publish the same envelopes under new message ids: past any dedup window.
        for env_msg in await stream_messages(js, namespace):
            raw = msgspec.json.encode(env_msg)
            await js.publish(
                subject_for("acc_probe", env_msg.type, namespace),
                raw,
                headers={"Nats-Msg-Id": "x" + env_msg.event_id},
            )
        await store.execute("dup", ProbeDecider("dup"), ProbeCommand(), PROBE_META)
        await eventually(lambda: _count(pool, schema, 4))
    rows = await applied(pool, schema)
    assert [r[1] for r in rows] == [1, 2, 3, 4] and all(r[2] == 1 for r in rows)


async def test_poison_message_is_dead_lettered_and_consumer_goes_on(
    infra, pool, nc, schema, namespace
):
    js = nc.jetstream()
    store = EventStore(pool, schema, "test")
    probe = ProbeProjection(schema, fail_on="bad")
    async with pool.connection() as conn:
        await probe.create(conn)
    relay = Relay(infra.dsn, schema, PROBE_SOURCE, js, namespace)
    consumer = ProjectionConsumer(
        js=js, pool=pool, dsn=infra.dsn, projection=probe, namespace=namespace
    )
    async with running(relay, consumer):
        await store.execute("good", ProbeDecider("good"), ProbeCommand(), PROBE_META)
        await store.execute("bad", ProbeDecider("bad"), ProbeCommand(), PROBE_META)
        await js.publish(subject_for("acc_probe", "account.updated", namespace), b"{not json")
        await store.execute("good", ProbeDecider("good"), ProbeCommand(), PROBE_META)
        await eventually(lambda: _count(pool, schema, 2))
        dead = await eventually(lambda: _dead_letters(pool, schema, 2))
        # The poison messages are settled with their batches: nothing is left pending or comes
        # back (the dead letters, committed with the checkpoint, are their record).
        info = await eventually(lambda: _settled(js, namespace, probe.name))
    assert info.num_redelivered == 0
    assert {d[0] for d in dead} == {"test-probe"}
    assert any("cannot apply" in d[1] for d in dead) and any("undecodable" in d[1] for d in dead)


async def test_replay_rebuilds_projection_and_consumer_resumes_without_duplicates(
    infra, pool, nc, schema, namespace
):
    js = nc.jetstream()
    store = EventStore(pool, schema, "test")
    probe = ProbeProjection(schema)
    async with pool.connection() as conn:
        await probe.create(conn)
    relay = Relay(infra.dsn, schema, PROBE_SOURCE, js, namespace)
    for i in range(5):
        await store.execute(f"r{i}", ProbeDecider(f"r{i}"), ProbeCommand(4), PROBE_META)
    consumer = ProjectionConsumer(
        js=js, pool=pool, dsn=infra.dsn, projection=probe, namespace=namespace
    )
    async with running(relay, consumer):
        await eventually(lambda: _count(pool, schema, 20))
    count = await replay(infra.dsn, probe, {PROBE_SOURCE: schema})
    assert count == 20
    assert len(await applied(pool, schema)) == 20
    consumer = ProjectionConsumer(
        js=js, pool=pool, dsn=infra.dsn, projection=probe, namespace=namespace
    )
    async with running(relay, consumer):
        await store.execute("r0", ProbeDecider("r0"), ProbeCommand(), PROBE_META)
        await eventually(lambda: _count(pool, schema, 21))
    rows = await applied(pool, schema)
    assert len(rows) == 21 and all(r[2] == 1 for r in rows)


async def _count(pool, schema, n):
    return len(await applied(pool, schema)) >= n


async def _settled(js, namespace, durable):
    """The consumer's JetStream state once everything delivered is acknowledged, else None."""
    info = await js.consumer_info(events_stream(namespace), durable)
    done = info.num_ack_pending == 0 and info.ack_floor.stream_seq == info.delivered.stream_seq
    return info if done and info.delivered.stream_seq > 0 else None


async def _dead_letters(pool, schema, n):
    async with pool.connection() as conn:
        cur = await conn.execute(
            sql.SQL("SELECT consumer, error FROM {}.dead_letters").format(sql.Identifier(schema))
        )
        rows = await cur.fetchall()
    return rows if len(rows) >= n else None


async def test_a_copy_that_lost_its_consumer_to_another_replica_holds_no_write_back(
    infra, pool, nc, schema, namespace
):
    """Two replicas of one projection's consumer: A applies, B stands by. A's lock session is
    lost (a PostgreSQL restart ends every session), B takes the lock and the consumer over, and
    A's pull fails. From then on A is no longer applying, so a write's barrier (`reach`) must
    not wait on it, while B applies what comes next."""
    store, relay, replica = await probed(infra, pool, nc, schema, namespace)
    a, b = replica(), replica()
    stop = asyncio.Event()
    async with running(relay):
        a_task = asyncio.create_task(a.run(stop))  # the crash this test causes ends here
        await asyncio.wait_for(a.running.wait(), 30)
        b_task = asyncio.create_task(b.run(stop))
        try:
            await store.execute("one", ProbeDecider("one"), ProbeCommand(), PROBE_META)
            await eventually(lambda: _count(pool, schema, 1))
            await asyncio.wait_for(b.started.wait(), 10)
            assert not b.running.is_set()
            key = consumer_lock(schema, a.projection.name)
            async with await psycopg.AsyncConnection.connect(infra.dsn, autocommit=True) as c:
                await c.execute(
                    "SELECT pg_terminate_backend(l.pid) FROM pg_locks l"
                    " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
                    " AND l.objid::bigint = (hashtext(%s)::bigint & 4294967295)",
                    [key],
                )
            await asyncio.wait_for(b.running.wait(), 15)
            await eventually(lambda: _async(not a.running.is_set()), timeout=30)
            assert await asyncio.wait_for(a.reach(10**9, 5.0), 1.0)  # answered at once
            await store.execute("one", ProbeDecider("one"), ProbeCommand(), PROBE_META)
            await eventually(lambda: _count(pool, schema, 2))
        finally:
            stop.set()
            await asyncio.gather(a_task, b_task, return_exceptions=True)


async def _async(value):
    return value


async def test_the_held_back_check_probes_the_commit_order_index_not_the_whole_store(
    infra, pool, nc, schema, namespace
):
    """After each drain the relay asks whether any row lies past its cursor. On a store of tens
    of thousands of events with the cursor at its end, that reads a row or two, not the table
    (an EXISTS form was answered with a sequential scan of every event, each time, whenever the
    table had grown past its statistics; here it has none)."""
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        await conn.execute(
            sql.SQL(
                "INSERT INTO {}.events (event_id, stream_id, stream_version, type, data, meta)"
                " SELECT gen_random_uuid(), 's-' || n, 1, 'probe.happened', '[]', '[]'"
                " FROM generate_series(1, 30000) AS n"
            ).format(sql.Identifier(schema))
        )
        cur = await conn.execute(
            sql.SQL("SELECT tx_id::text::bigint, max(position) FROM {}.events GROUP BY 1").format(
                sql.Identifier(schema)
            )
        )
        end = await cur.fetchone()
    relay = Relay(infra.dsn, schema, PROBE_SOURCE, nc.jetstream(), namespace)

    async def checks(conn) -> None:
        assert await relay.held_back(conn, (end[0], end[1] - 1))
        assert not await relay.held_back(conn, (end[0], end[1]))

    seq_read, idx_fetched = await rows_read(infra.dsn, schema, "events", checks)
    assert seq_read == 0 and idx_fetched <= 2
