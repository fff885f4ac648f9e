"""A dead-lettered security event is not left to a log line: it alerts, it is counted on
/metrics, an operator can list and redrive it, and retention never sweeps it unresolved. A
cache follower that cannot apply an event says so, leaves readiness and reloads."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import timedelta

import httpx
import msgspec
import psycopg
from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry
from psycopg import sql
from structlog.testing import capture_logs

from authpi.contracts.base import Envelope, Event
from authpi.contracts.directory import ApiKeyDeleted
from authpi.contracts.subjects import events_stream
from authpi.crypto.clock import FixedClock
from authpi.eventstore.checkpoints import Checkpoints
from authpi.eventstore.deadletters import DeadLetters
from authpi.eventstore.relay import Relay
from authpi.eventstore.store import EventStore
from authpi.messaging.consumer import ProjectionConsumer
from authpi.messaging.deadletters import DeadLetterMonitor, redrive
from authpi.messaging.follower import CacheFollower
from authpi.testing.plugin import eventually, running
from authpi.testing.probe import (
    PROBE_META,
    PROBE_SOURCE,
    ProbeCommand,
    ProbeDecider,
    ProbeProjection,
)
from authpi.web.supervisor import supervise


class DeleteKey:
    """A decider that deletes an API key: its event is a security event."""

    INITIAL: int = 0

    def decide(self, cmd: ProbeCommand, state: int) -> list[Event]:
        return [ApiKeyDeleted(id="key_doomed", deleted_at=0)]

    def evolve(self, state: int, event: Event) -> int:
        return state + 1


def _now_clock() -> FixedClock:
    return FixedClock(start_ms=time.time_ns() // 1_000_000)


async def _rows(pool, schema):
    async with pool.connection() as conn:
        return await DeadLetters(schema).list(conn)


async def _applied(pool, schema, stream_id):
    async with pool.connection() as conn:
        cur = await conn.execute(
            sql.SQL("SELECT count(*) FROM {}.probe_applied WHERE stream_id = %s").format(
                sql.Identifier(schema)
            ),
            [stream_id],
        )
        return (await cur.fetchone())[0]


async def test_dead_lettered_security_event_alerts_counts_and_redrives(
    infra, pool, nc, schema, namespace
):
    js = nc.jetstream()
    store = EventStore(pool, schema, "test")
    probe = ProbeProjection(schema, fail_on="key_doomed")
    async with pool.connection() as conn:
        await probe.create(conn)
    monitor = DeadLetterMonitor(pool, [schema], _now_clock(), timedelta(days=30))
    relay = Relay(infra.dsn, schema, PROBE_SOURCE, js, namespace)
    consumer = ProjectionConsumer(
        js=js, pool=pool, dsn=infra.dsn, projection=probe, namespace=namespace,
        on_dead_letter=monitor.record,
    )  # fmt: skip
    with capture_logs() as logs:
        async with running(relay, consumer):
            await store.execute("key_doomed", DeleteKey(), ProbeCommand(), PROBE_META)
            rows = await eventually(lambda: _rows(pool, schema))

    [row] = rows
    assert (row.consumer, row.event_type, row.security) == ("test-probe", "api-key.deleted", True)
    alerts = [e for e in logs if e["event"] == "dead_letter.security_event"]
    assert alerts and alerts[0]["log_level"] == "error"
    assert alerts[0]["event_type"] == "api-key.deleted"

    registry = CollectorRegistry()
    registry.register(monitor)
    await monitor.refresh()
    text = generate_latest(registry).decode()
    assert (
        'authpi_dead_letters{consumer="test-probe",event_type="api-key.deleted",security="true"}'
        " 1.0" in text
    )
    assert (
        'authpi_dead_letters_recorded_total{consumer="test-probe",event_type="api-key.deleted"}'
        " 1.0" in text
    )

    still_failing = await redrive(pool, probe)
    assert still_failing.redriven == [] and list(still_failing.failed) == [row.id]
    assert [r.id for r in await _rows(pool, schema)] == [row.id]  # kept, with the new error

    probe.fail_on = None  # the projection is fixed
    result = await redrive(pool, probe)

    assert result.redriven == [row.id] and result.failed == {}
    assert await _rows(pool, schema) == []
    assert await _applied(pool, schema, "key_doomed") == 1
    await monitor.refresh()
    lines = generate_latest(registry).decode().splitlines()
    assert not [line for line in lines if line.startswith("authpi_dead_letters{")]


async def test_sweep_keeps_unresolved_security_events_and_drops_old_others(pool, schema):
    dead = Checkpoints(schema, "test-probe")
    async with pool.connection() as conn:
        for seq, event_type, security in ((1, "api-key.deleted", True), (2, "user.updated", False)):
            await dead.dead_letter(
                conn, stream_seq=seq, subject=f"x.evt.acc_1.{event_type}", event_id=None,
                error="boom", payload=b"{}", event_type=event_type, security=security,
            )  # fmt: skip
    clock = _now_clock()
    monitor = DeadLetterMonitor(pool, [schema], clock, timedelta(days=30))

    clock.advance(days=29)
    assert await monitor.sweep() == 0
    clock.advance(days=2)
    assert await monitor.sweep() == 1

    assert [(r.event_type, r.security) for r in await _rows(pool, schema)] == [
        ("api-key.deleted", True)
    ]


async def test_follower_callback_failure_is_counted_leaves_readiness_and_reloads(
    infra, pool, nc, schema, namespace
):
    js = nc.jetstream()
    store = EventStore(pool, schema, "test")
    relay = Relay(infra.dsn, schema, PROBE_SOURCE, js, namespace)
    loads: list[int] = []
    applied: list[str] = []

    async def load(conn) -> None:
        loads.append(1)

    def apply(env: Envelope, event: Event) -> None:
        if env.stream_id == "poison" and len(loads) == 1:
            raise ValueError("cache cannot take it")
        applied.append(env.stream_id)

    follower = CacheFollower(
        pool=pool, js=js, namespace=namespace, schema=schema, consumer="test-cache",
        event_types="account.updated", load=load, apply=apply,
    )  # fmt: skip
    failures: list[str] = []
    stop = asyncio.Event()
    with capture_logs() as logs:
        async with running(relay):
            task = asyncio.create_task(supervise("cache", follower.run, stop, failures.append))
            try:
                await asyncio.wait_for(follower.warm.wait(), 30)
                await store.execute("poison", ProbeDecider("poison"), ProbeCommand(), PROBE_META)
                await eventually(lambda: _true(follower.failures == 1))
                await eventually(lambda: _true(len(loads) == 2 and follower.warm.is_set()))
            finally:
                stop.set()
                await task

    assert failures == ["cache"]
    failed = [e for e in logs if e["event"] == "follower.apply_failed"]
    assert failed and failed[0]["log_level"] == "error"
    assert failed[0]["event_type"] == "account.updated"


async def _true(value: bool) -> bool:
    return value


async def test_platform_metrics_and_cli_redrive(platform, tmp_path):
    """The running platform exposes the gauge, and `authpi dead-letters` lists and redrives a
    row through the real consumer's projection."""
    async with httpx.AsyncClient() as http:
        metrics = await http.get(f"{platform.ops_url}/metrics")  # the operations port
    assert "# TYPE authpi_dead_letters gauge" in metrics.text

    gateway = f"{platform.namespace}_gateway"
    payload = await _api_key_created_message(platform)
    async with await psycopg.AsyncConnection.connect(platform.dsn, autocommit=True) as conn:
        await Checkpoints(gateway, "gateway-directory").dead_letter(
            conn, stream_seq=1, subject="x.evt.acc_1.api-key.created", event_id=None,
            error="boom", payload=payload, event_type="api-key.created", security=False,
        )  # fmt: skip

    listed = await _cli(platform, "dead-letters", "list")
    [row] = [json.loads(line) for line in listed.splitlines() if line.startswith("{")]
    assert (row["consumer"], row["event_type"]) == ("gateway-directory", "api-key.created")

    out = await _cli(platform, "dead-letters", "redrive", "--consumer", "gateway-directory")
    assert json.loads(out.splitlines()[-1]) == {
        "id": row["id"],
        "consumer": "gateway-directory",
        "ok": True,
    }
    async with await psycopg.AsyncConnection.connect(platform.dsn) as conn:
        assert await DeadLetters(gateway).list(conn) == []


async def _api_key_created_message(platform) -> bytes:
    from authpi.messaging.streams import connect

    nc = await connect(platform.nats_url)
    try:
        js = nc.jetstream()
        stream = events_stream(platform.namespace)
        info = await js.stream_info(stream)
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(stream, seq)
            if msgspec.json.decode(msg.data, type=Envelope).type == "api-key.created":
                return msg.data
    finally:
        await nc.close()
    raise AssertionError("no api-key.created event on the stream")


async def _cli(platform, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPI_")}
    env.update(
        AUTHPI_DATA_DIR=str(platform.handle.settings.data_dir),
        AUTHPI_DATABASE_URL=platform.dsn,
        AUTHPI_NATS_URL=platform.nats_url,
        AUTHPI_NAMESPACE=platform.namespace,
        AUTHPI_LOG_FORMAT="json",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "authpi.platform.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    return out.decode()
