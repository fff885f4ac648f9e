"""The webhook delivery benchmark (part of `make bench`): `authpi up` as a subprocess on
127.0.0.1, 20 webhooks to 20 local receivers in this process (raw asyncio HTTP/1.1 keep-alive
servers that check every signature, authpi.testing.receiver), the platform's own delivery engine
in between. Figures, printed and written to bench-results/webhooks.json:

- `capacity`: deliveries/s when a burst of events is committed to the audit log at once (the
  outbox the fan-out tails; rows COPYed in one transaction, as the audit-log consumers write them):
  events x webhooks first attempts, from the commit to the last one received (target >= 2,000/s);
- `half_load`: the same engine fed at half that rate, in small transactions every 20 ms: p50/p99
  of the delay from each row's commit to its first delivery attempt at a receiver (target
  p99 < 1 s; the spec's bound is 5 s);
- `api_path`: users created through the Core API at a steady rate (each a `user.created` in the
  directory's store, carried to the audit log by its consumer): p50/p99 from the event's recorded
  time (`data.timestamp`) to its first delivery attempt, the whole way through."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import uvloop

from authpi.contracts.public import PublicEvent, public_event_id
from authpi.crypto.ids import uuid7
from authpi.platform.testing.process import platform_process
from authpi.platform.testing.webhooks import WEBHOOK_ENV, create_users, new_issuer, register, sdk
from authpi.testing.infra import new_namespace, start_infra
from authpi.testing.receiver import Received, WebhookReceiver
from tests.bench.bench import pct

AUDIT_COLUMNS = (
    "id", "account_id", "type", "occurred_at", "issuer_id", "user_id", "client_id", "agent_id",
    "org_id", "event",
)  # fmt: skip
_ENCODE = msgspec.json.Encoder()


def user_created_row(account_id: str, issuer_id: str, ms: int) -> tuple[Any, ...]:
    """One audit-log row as the audit-log consumer writes it for a `user.created` (0001 columns):
    a fresh evt_ id (UUIDv7 of `ms`), the subject columns, the public event's JSON."""
    event_id = public_event_id(str(_uuid(ms)))
    user_id = "usr_" + secrets.token_hex(8)
    event = PublicEvent(
        id=event_id, type="user.created", trace=secrets.token_hex(8), trigger="api",
        auth={"type": "api_key", "key_id": "key_bench"},
        subject={"account_id": account_id, "issuer_id": issuer_id, "user_id": user_id},
        timestamp=ms, data={"id": user_id, "username_type": "email", "status": "active"},
    )  # fmt: skip
    return (event_id, account_id, "user.created", ms, issuer_id, user_id, None, None, None,
            _ENCODE.encode(event).decode())  # fmt: skip


def _uuid(ms: int) -> Any:
    import uuid

    return uuid.UUID(int=uuid7(ms, os.urandom(10)))


async def copy_rows(
    conn: psycopg.AsyncConnection[Any], schema: str, rows: Iterator[tuple[Any, ...]]
):
    columns = ", ".join(AUDIT_COLUMNS)
    async with conn.cursor() as cur:
        async with cur.copy(f'COPY "{schema}".audit_events ({columns}) FROM STDIN') as copy:
            for row in rows:
                await copy.write_row(row)


class Arrivals:
    """First attempts as the receivers see them: (receiver, event id) -> arrival time."""

    def __init__(self) -> None:
        self.first: dict[tuple[int, str], float] = {}
        self.bodies = False  # keep the event's recorded time too (the API-path scenario)
        self.recorded: dict[str, float] = {}

    def hook(self, index: int):
        def on_request(got: Received) -> None:
            key = (index, got.event_id)
            if got.attempt == 1 and key not in self.first:
                self.first[key] = got.at
                if self.bodies and got.event_id not in self.recorded:
                    self.recorded[got.event_id] = got.json()["data"]["timestamp"] / 1000

        return on_request

    def since(self, events: dict[str, float]) -> list[float]:
        return [(at - events[e]) * 1000 for (_, e), at in self.first.items() if e in events]


async def wait_for(check, timeout: float, interval: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(interval)
    return False


async def capacity(conn, schema: str, account: str, issuer: str, arrivals: Arrivals,
                   hooks: int, events: int) -> dict[str, Any]:  # fmt: skip
    now = int(time.time() * 1000)
    rows = [user_created_row(account, issuer, now + i // 100) for i in range(events)]
    before = len(arrivals.first)
    async with conn.transaction():
        await copy_rows(conn, schema, iter(rows))
    committed = time.time()
    ids = {r[0]: committed for r in rows}
    want = before + events * hooks
    done = await wait_for(lambda: len(arrivals.first) >= want, timeout=180, interval=0.02)
    delays = arrivals.since(ids)
    last = max(delays) / 1000 if delays else 0.0
    return {
        "events": events, "webhooks": hooks, "deliveries": len(delays), "complete": done,
        "seconds": round(last, 3),
        "deliveries_per_s": round(len(delays) / last, 1) if last else 0.0,
        "first_attempt_p50_ms": round(pct(delays, 0.5), 1),
    }  # fmt: skip


async def steady(conn, schema: str, account: str, issuer: str, arrivals: Arrivals, hooks: int,
                 deliveries_per_s: float, seconds: float) -> dict[str, Any]:  # fmt: skip
    """Rows committed every 20 ms, `deliveries_per_s / hooks` events/s: commit to first attempt."""
    per_tick = deliveries_per_s / hooks * 0.02
    owed = 0.0
    ids: dict[str, float] = {}
    before = len(arrivals.first)
    start = time.monotonic()
    tick = start
    while time.monotonic() - start < seconds:
        owed += per_tick
        n, owed = int(owed), owed - int(owed)
        if n:
            now = int(time.time() * 1000)
            rows = [user_created_row(account, issuer, now) for _ in range(n)]
            async with conn.transaction():
                await copy_rows(conn, schema, iter(rows))
            committed = time.time()
            ids.update((r[0], committed) for r in rows)
        tick += 0.02
        await asyncio.sleep(max(0.0, tick - time.monotonic()))
    want = before + len(ids) * hooks
    await wait_for(lambda: len(arrivals.first) >= want, timeout=60, interval=0.05)
    delays = arrivals.since(ids)
    return {
        "target_deliveries_per_s": round(deliveries_per_s, 1), "events": len(ids),
        "deliveries": len(delays), "expected": len(ids) * hooks,
        "p50_ms": round(pct(delays, 0.5), 1), "p99_ms": round(pct(delays, 0.99), 1),
        "max_ms": round(max(delays), 1) if delays else None,
    }  # fmt: skip


async def api_path(admin, issuer: str, arrivals: Arrivals, hooks: int, per_s: float,
                   seconds: float) -> dict[str, Any]:  # fmt: skip
    arrivals.bodies = True
    before = set(arrivals.recorded)
    seen = len(arrivals.first)
    made: list[str] = []
    start = time.monotonic()
    tasks: list[asyncio.Task[list[str]]] = []
    i = 0
    while time.monotonic() - start < seconds:
        tasks.append(asyncio.create_task(create_users(admin, issuer, 1, prefix=f"api{i}")))
        i += 1
        await asyncio.sleep(max(0.0, start + i / per_s - time.monotonic()))
    for t in tasks:
        made.extend(await t)
    want = seen + len(made) * hooks
    await wait_for(lambda: len(arrivals.first) >= want, timeout=60, interval=0.05)
    recorded = {e: t for e, t in arrivals.recorded.items() if e not in before}
    delays = arrivals.since(recorded)
    arrivals.bodies = False
    return {
        "users_per_s": per_s, "events": len(made), "deliveries": len(delays),
        "expected": len(made) * hooks,
        "p50_ms": round(pct(delays, 0.5), 1), "p99_ms": round(pct(delays, 0.99), 1),
    }  # fmt: skip


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    infra = start_infra()
    tmp = Path(tempfile.mkdtemp(prefix="authpi-bench-wh-"))
    ns = new_namespace()
    schema = f"{ns}_webhook"
    results: dict[str, Any] = {"hooks": args.hooks}
    arrivals = Arrivals()
    receivers = [WebhookReceiver(keep=False) for _ in range(args.hooks)]
    try:
        async with platform_process(1, tmp, infra, namespace=ns, settings=WEBHOOK_ENV) as up:
            c = up.creds
            account = c["account_id"]
            for i, r in enumerate(receivers):
                await r.start()
                r.on_request = arrivals.hook(i)
            async with sdk(c["api_url"], account, (c["api_key_id"], c["api_key_secret"])) as admin:
                issuer = await new_issuer(admin, "bench")
                for r in receivers:
                    await register(admin, r, issuer=issuer)
                async with await psycopg.AsyncConnection.connect(infra.dsn) as conn:
                    await capacity(conn, schema, account, issuer, arrivals, args.hooks, 50)  # warm
                    results["capacity"] = cap = await capacity(
                        conn, schema, account, issuer, arrivals, args.hooks, args.events
                    )
                    half = max(cap["deliveries_per_s"], 1.0) / 2
                    results["half_load"] = await steady(
                        conn, schema, account, issuer, arrivals, args.hooks, half, args.seconds
                    )
                results["api_path"] = await api_path(
                    admin, issuer, arrivals, args.hooks, args.api_users_per_s, args.seconds
                )
            results["receiver_problems"] = sum(r.problem_count for r in receivers)
            results["received"] = sum(r.count for r in receivers)
    finally:
        for r in receivers:
            await r.stop()
        infra.close()
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="bench_webhooks")
    parser.add_argument("--hooks", type=int, default=20, help="webhooks, one receiver each")
    parser.add_argument("--events", type=int, default=1_000, help="events of the capacity burst")
    parser.add_argument("--seconds", type=float, default=10.0, help="of each steady scenario")
    parser.add_argument("--api-users-per-s", type=float, default=20.0)
    args = parser.parse_args(argv)
    uvloop.install()
    results = asyncio.run(measure(args))
    cap, half = results["capacity"], results["half_load"]
    results["targets"] = {
        "deliveries_per_s >= 2000": cap["deliveries_per_s"] >= 2000,
        "half_load p99 < 1000 ms": half["p99_ms"] < 1000,
    }
    print(json.dumps(results, indent=2))
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "webhooks.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
