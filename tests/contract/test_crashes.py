"""Crashes between steps, with real subprocesses killed by SIGKILL: the relay in the middle of a
batch, and a consumer after committing a batch but before acking it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from psycopg import sql

from authpi.contracts.subjects import events_stream
from authpi.eventstore.relay import Relay
from authpi.eventstore.store import EventStore
from authpi.messaging.consumer import ProjectionConsumer
from authpi.testing.plugin import eventually
from authpi.testing.probe import (
    PROBE_META,
    PROBE_SOURCE,
    ProbeCommand,
    ProbeDecider,
    ProbeProjection,
)

from .test_relay_consumer import applied, running


def _env(infra, namespace: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AUTHPI_DATABASE_URL=infra.dsn,
        AUTHPI_NATS_URL=infra.nats_url,
        AUTHPI_NAMESPACE=namespace,
        AUTHPI_LOG_FORMAT="json",
    )
    return env


async def _spawn(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, *args, env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def _stream_count(js, namespace: str) -> int:
    return (await js.stream_info(events_stream(namespace))).state.messages


async def _cursor(pool, schema: str) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute(
            sql.SQL("SELECT position FROM {}.relay_cursor").format(sql.Identifier(schema))
        )
        row = await cur.fetchone()
    return int(row[0])


async def test_relay_killed_mid_batch_then_restarted_loses_and_duplicates_nothing(
    infra, pool, nc, schema, namespace
):
    js = nc.jetstream()
    store = EventStore(pool, schema, "test")
    total = 0
    for i in range(30):
        await store.execute(f"k{i}", ProbeDecider(f"k{i}"), ProbeCommand(1000), PROBE_META)
        total += 1000
    relay_cmd = (
        "-m",
        "authpi.platform.cli",
        "relay",
        "--service",
        PROBE_SOURCE,
        "--schema",
        schema,
    )
    proc = await _spawn(*relay_cmd, env=_env(infra, namespace))

    async def some_published():
        return await _stream_count(js, namespace) > 0

    await eventually(some_published, timeout=60, interval=0.005)
    proc.send_signal(signal.SIGKILL)
    assert await proc.wait() == -signal.SIGKILL
    published_at_kill = await _stream_count(js, namespace)
    assert 0 < published_at_kill < total, "the kill must land in the middle of the run"
    assert await _cursor(pool, schema) < total

    proc = await _spawn(*relay_cmd, env=_env(infra, namespace))
    try:

        async def all_published():
            return (
                await _stream_count(js, namespace) == total and await _cursor(pool, schema) == total
            )

        await eventually(all_published, timeout=120)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await proc.wait() == 0  # a clean stop on SIGTERM

    probe = ProbeProjection(schema)
    async with pool.connection() as conn:
        await probe.create(conn)
    consumer = ProjectionConsumer(
        js=js, pool=pool, dsn=infra.dsn, projection=probe, namespace=namespace
    )
    async with running(consumer):

        async def all_applied():
            return len(await applied(pool, schema)) == total

        await eventually(all_applied, timeout=120)
    rows = await applied(pool, schema)
    assert len({(r[0], r[1]) for r in rows}) == total and max(r[2] for r in rows) == 1


async def test_consumer_killed_between_commit_and_ack_applies_nothing_twice(
    infra, pool, nc, schema, namespace
):
    js = nc.jetstream()
    store = EventStore(pool, schema, "test")
    for i in range(6):
        await store.execute(f"c{i}", ProbeDecider(f"c{i}"), ProbeCommand(100), PROBE_META)
    probe = ProbeProjection(schema)
    async with pool.connection() as conn:
        await probe.create(conn)
    relay = Relay(infra.dsn, schema, PROBE_SOURCE, js, namespace)
    async with running(relay):
        await eventually(lambda: _has(js, namespace, 600))
        proc = await _spawn(
            "-m", "authpi.testing.crash_consumer", "--schema", schema, "--namespace", namespace,
            "--crash-after", "3", "--batch", "50", env=_env(infra, namespace),
        )  # fmt: skip
        assert await asyncio.wait_for(proc.wait(), 60) == -signal.SIGKILL
        at_crash = len(await applied(pool, schema))
        assert 0 < at_crash < 600  # committed, never acked

        consumer = ProjectionConsumer(
            js=js, pool=pool, dsn=infra.dsn, projection=probe, namespace=namespace
        )
        async with running(consumer):

            async def all_applied():
                return len(await applied(pool, schema)) == 600

            await eventually(all_applied, timeout=60)
    rows = await applied(pool, schema)
    assert max(r[2] for r in rows) == 1, "an event committed before the crash was applied again"
    versions: dict[str, int] = {}
    for stream_id, version, _ in rows:
        assert version == versions.get(stream_id, 0) + 1
        versions[stream_id] = version


async def _has(js, namespace, n):
    return await _stream_count(js, namespace) >= n
