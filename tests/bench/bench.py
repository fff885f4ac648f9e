"""`make bench`: throughput and latency of the foundation on this machine, against real
PostgreSQL and NATS JetStream (embedded, or AUTHPI_DATABASE_URL / AUTHPI_NATS_URL).

Figures: appends/s (single-event and batched commands), relay events/s from insert to JetStream
ack, commit-to-projection delay p50/p99 at a steady 1,000 events/s, and replay events/s."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from authpi.eventstore.migrations import migrate
from authpi.eventstore.relay import Relay
from authpi.eventstore.replay import replay
from authpi.eventstore.store import EventStore
from authpi.messaging.consumer import ProjectionConsumer
from authpi.messaging.streams import connect, ensure_streams, jetstream
from authpi.observability import configure_logging
from authpi.testing.infra import Infra, new_namespace, start_infra
from authpi.testing.probe import (
    PROBE_META,
    PROBE_SOURCE,
    ProbeCommand,
    ProbeDecider,
    ProbeProjection,
)

# The latency load: 1,000 events/s as 200 commands/s of 5 events. One Python writer process
# tops out near 900 single-event commands/s on this 2-core machine (bench figure
# appends_per_s_single), too close to 1,000/s to hold a steady rate beside the relay, the
# consumer and PostgreSQL.
PER_COMMAND = 5


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def bench_appends(store: EventStore, seconds: float, batch: int, workers: int = 8) -> float:
    count = 0
    deadline = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal count
        i = 0
        while time.perf_counter() < deadline:
            sid = f"a{batch}-{w}-{i % 50}"
            await store.execute(sid, ProbeDecider(sid), ProbeCommand(batch), PROBE_META)
            count += batch
            i += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(workers)))
    return count / (time.perf_counter() - started)


async def bench_relay(infra: Infra, store: EventStore, js: Any, ns: str, total: int) -> float:
    for i in range(total // 1000):
        await store.execute(f"r{i}", ProbeDecider(f"r{i}"), ProbeCommand(1000), PROBE_META)
    relay = Relay(infra.dsn, store.schema, PROBE_SOURCE, js, ns)
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(relay.run(stop))
    while relay.published < total:
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    return relay.published / elapsed


async def bench_latency(
    infra: Infra, pool: AsyncConnectionPool, js: Any, rate: int, seconds: float
) -> dict[str, float]:
    ns = new_namespace()  # its own stream: nothing else in the consumer's way
    await ensure_streams(js, ns)
    schema = f"{ns}_lat"
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        await migrate(conn, schema, None)
    probe = ProbeProjection(schema, name="bench-latency")
    async with pool.connection() as conn:
        await probe.create(conn)
    relay = Relay(infra.dsn, schema, PROBE_SOURCE, js, ns)
    consumer = ProjectionConsumer(js=js, pool=pool, dsn=infra.dsn, projection=probe, namespace=ns)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(consumer.run(stop))]
    await relay.running.wait()
    await consumer.running.wait()
    # The load comes from writer processes, as HTTP workers would produce it; this process
    # runs only the relay and the consumer, as the platform's supervisor does.
    writers, out_dir = 1, Path(tempfile.mkdtemp(prefix="authpi-bench-"))
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.bench.bench", "--writer", "--dsn", infra.dsn,
            "--schema", schema, "--rate", str(rate / writers / PER_COMMAND),
            "--seconds", str(seconds), "--per-command", str(PER_COMMAND),
            "--prefix", f"w{w}-", "--out", str(out_dir / f"w{w}.json"),
        )
        for w in range(writers)
    ]  # fmt: skip
    for proc in procs:
        await proc.wait()
    committed: dict[tuple[str, int], float] = {}
    achieved_events = 0.0
    for w in range(writers):
        report = json.loads((out_dir / f"w{w}.json").read_text())
        achieved_events = report["rate"] * PER_COMMAND
        for sid, version, at in report["commits"]:
            for v in range(version - PER_COMMAND + 1, version + 1):
                committed[(sid, v)] = at
    total = len(committed)
    while consumer.applied < total:
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*tasks)
    async with pool.connection() as conn:
        cur = await conn.execute(
            sql.SQL("SELECT stream_id, stream_version, applied_at_us FROM {}.probe_applied").format(
                sql.Identifier(schema)
            )
        )
        rows = await cur.fetchall()
    delays = [
        (r[2] / 1e6 - committed[(r[0], r[1])]) * 1000 for r in rows if (r[0], r[1]) in committed
    ]
    return {
        "events": len(delays),
        "offered_events_per_s": achieved_events,
        "events_per_command": PER_COMMAND,
        "p50_ms": pct(delays, 0.50),
        "p99_ms": pct(delays, 0.99),
        "mean_ms": statistics.fmean(delays),
    }


class PerEventProbe(ProbeProjection):
    """The probe without its set-based path: replay through apply() one event at a time."""

    apply_many = None  # type: ignore[assignment]


async def bench_replay(
    infra: Infra, pool: AsyncConnectionPool, schema: str, per_event: bool
) -> tuple[int, float]:
    cls = PerEventProbe if per_event else ProbeProjection
    probe = cls(schema, name="bench-replay-1" if per_event else "bench-replay")
    async with pool.connection() as conn:
        await probe.create(conn)
    started = time.perf_counter()
    count = await replay(infra.dsn, probe, {"bench": schema})
    return count, count / (time.perf_counter() - started)


async def main(seconds: float, relay_events: int) -> dict[str, Any]:
    infra = start_infra()
    try:
        pool: AsyncConnectionPool = AsyncConnectionPool(
            infra.dsn, min_size=4, max_size=40, open=False
        )
        await pool.open(wait=True)
        nc = await connect(infra.nats_url)
        js = jetstream(nc)
        ns = new_namespace()
        await ensure_streams(js, ns)
        schema = f"{ns}_bench"
        async with pool.connection() as conn:
            await conn.set_autocommit(True)
            await migrate(conn, schema, None)
        store = EventStore(pool, schema, "bench")
        results: dict[str, Any] = {}
        results["appends_per_s_single"] = await bench_appends(store, seconds, batch=1)
        results["appends_per_s_batched_100"] = await bench_appends(store, seconds, batch=100)
        results["relay_events_per_s"] = await bench_relay(infra, store, js, ns, relay_events)
        results["commit_to_projection_at_1000_per_s"] = await bench_latency(
            infra, pool, js, rate=1000, seconds=seconds * 2
        )
        count, rate = await bench_replay(infra, pool, schema, per_event=False)
        results["replay_events"] = count
        results["replay_events_per_s"] = rate
        _, rate = await bench_replay(infra, pool, schema, per_event=True)
        results["replay_events_per_s_per_event_apply"] = rate
        await nc.close()
        await pool.close()
        return results
    finally:
        infra.close()


async def writer(
    dsn: str, schema: str, rate: float, seconds: float, prefix: str, out: str, per_command: int
) -> None:
    """Offer `rate` single-event commands per second for `seconds`; record commit times."""
    pool: AsyncConnectionPool = AsyncConnectionPool(dsn, min_size=8, max_size=32, open=False)
    await pool.open(wait=True)
    store = EventStore(pool, schema, "lat")
    commits: list[tuple[str, int, float]] = []
    total, interval = int(rate * seconds), 1.0 / rate
    inflight: set[asyncio.Task[None]] = set()

    async def one(i: int) -> None:
        sid = f"{prefix}{i % 100}"
        outcome = await store.execute(
            sid, ProbeDecider(sid), ProbeCommand(per_command), PROBE_META, attempts=50
        )
        commits.append((sid, outcome.version, time.time()))

    started = time.perf_counter()
    for i in range(total):
        delay = started + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i))
        inflight.add(task)
        task.add_done_callback(inflight.discard)
    await asyncio.gather(*inflight)
    rate_done = total / (time.perf_counter() - started)
    await pool.close()
    Path(out).write_text(json.dumps({"rate": rate_done, "commits": commits}))


def cli() -> None:
    if "--writer" in sys.argv:
        wp = argparse.ArgumentParser()
        for name in ("--dsn", "--schema", "--prefix", "--out"):
            wp.add_argument(name, required=True)
        wp.add_argument("--rate", type=float, required=True)
        wp.add_argument("--seconds", type=float, required=True)
        wp.add_argument("--per-command", type=int, default=1)
        wp.add_argument("--writer", action="store_true")
        a = wp.parse_args()
        uvloop.install()
        asyncio.run(writer(a.dsn, a.schema, a.rate, a.seconds, a.prefix, a.out, a.per_command))
        return
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--relay-events", type=int, default=50_000)
    args = parser.parse_args()
    configure_logging("console", "warning")
    uvloop.install()  # as `authpi up` runs
    results = asyncio.run(main(args.seconds, args.relay_events))
    print(json.dumps(results, indent=2))
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "foundation.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    cli()
