"""The Events API benchmark (part of `make bench`): list latency per page with 1,000,000 events
stored, unfiltered and filtered (target p99 < 50 ms per page).

`authpi up` runs as a subprocess on 127.0.0.1. The events are loaded with COPY straight into the
webhook service's audit log (`audit_events`, migration 0001 columns), in transactions of 10,000
rows, while the platform is stopped; the audit-log tailers' cursors are then moved past them (they
are history for this read benchmark, not news for the public stream or the webhooks), and the
platform is started again on the same data. 90 % of the rows belong to the bootstrap account
(20 issuers, 20,000 users, 100 clients, 20 event types, 30 days); the rest to another account.

Each scenario reads its first page and then follows `next_cursor`, one request at a time, through
raw HTTP (the client's parsing is not the server's latency); `window_first_pages` reads only the
first page of one-day `after`/`before` windows at 50 depths of the 30 days. Figures: printed and
written to bench-results/events.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
import uvloop

from authpi.contracts.public import PublicEvent, public_event_id
from authpi.embedded.servers import free_port
from authpi.platform.testing.process import platform_process
from authpi.platform.testing.webhooks import WEBHOOK_ENV
from authpi.testing.infra import new_namespace, start_infra
from tests.bench.bench import pct
from tests.bench.bench_webhooks import AUDIT_COLUMNS, _uuid

TYPES = (
    "user.created", "user.updated", "user.deleted", "user.blocked", "session.created",
    "session.terminated", "session.token-refreshed", "machine.token.issued",
    "user.verification.succeeded", "user.verification.failed", "user.password.changed",
    "client.created", "client.updated", "organization.created", "organization.member.added",
    "api-key.created", "issuer.updated", "agent.created", "agent.updated", "webhook.created",
)  # fmt: skip
DAY_MS = 86_400_000
_ENCODE = msgspec.json.Encoder()


def _row(rng: random.Random, account: str, ms: int) -> tuple[Any, ...]:
    kind = rng.choice(TYPES)
    issuer = f"i_bench{rng.randrange(20):02d}"
    user = (
        f"usr_bench{rng.randrange(20_000):05d}" if kind.startswith(("user.", "session.")) else None
    )
    client = f"cli_bench{rng.randrange(100):03d}" if rng.random() < 0.3 else None
    subject = {"account_id": account, "issuer_id": issuer}
    if user:
        subject["user_id"] = user
    if client:
        subject["client_id"] = client
    event_id = public_event_id(str(_uuid(ms)))
    event = PublicEvent(
        id=event_id, type=kind, trace=f"{rng.getrandbits(64):016x}", trigger="api",
        auth={"type": "api_key", "key_id": "key_bench"}, subject=subject, timestamp=ms,
        data={"id": user or client or issuer},
    )  # fmt: skip
    return (event_id, account, kind, ms, issuer, user, client, None, None,
            _ENCODE.encode(event).decode())  # fmt: skip


async def load(dsn: str, schema: str, account: str, total: int, per_tx: int) -> float:
    rng = random.Random(12)
    start_ms = int(time.time() * 1000) - 30 * DAY_MS
    step = 30 * DAY_MS / total
    columns = ", ".join(AUDIT_COLUMNS)
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        for first in range(0, total, per_tx):
            async with conn.transaction(), conn.cursor() as cur:
                copy_sql = f'COPY "{schema}".audit_events ({columns}) FROM STDIN'
                lines: list[str] = []
                for i in range(first, min(total, first + per_tx)):
                    owner = account if rng.random() < 0.9 else "acc_benchother"
                    row = _row(rng, owner, int(start_ms + i * step))
                    # COPY text format: the values hold no tab, newline or backslash.
                    lines.append("\t".join("\\N" if v is None else str(v) for v in row))
                async with cur.copy(copy_sql) as copy:
                    await copy.write("\n".join(lines) + "\n")
        await conn.execute(
            f'UPDATE "{schema}".audit_cursors SET (tx_id, seq) = (SELECT tx_id, seq'
            f' FROM "{schema}".audit_events ORDER BY tx_id DESC, seq DESC LIMIT 1)'
        )
        await conn.commit()
        await conn.set_autocommit(True)
        await conn.execute(f'VACUUM ANALYZE "{schema}".audit_events')
    return time.perf_counter() - started


async def scenario(http: httpx.AsyncClient, path: str, params: dict[str, Any], pages: int):
    latencies: list[float] = []
    cursor: str | None = None
    rows = 0
    for _ in range(pages):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        started = time.perf_counter()
        resp = await http.get(path, params=query)
        latencies.append((time.perf_counter() - started) * 1000)
        if resp.status_code != 200:
            return {"error": resp.status_code, "body": resp.text[:300]}
        body = resp.json()
        rows += len(body["data"])
        cursor = body.get("next_cursor")
        if not body.get("has_more") or not cursor:
            cursor = None  # start over from the first page
    return {
        "pages": len(latencies), "rows": rows, "p50_ms": round(pct(latencies, 0.5), 2),
        "p99_ms": round(pct(latencies, 0.99), 2), "max_ms": round(max(latencies), 2),
    }  # fmt: skip


async def first_pages(http: httpx.AsyncClient, path: str, limit: int, now: int, count: int):
    """First pages of one-day `after`/`before` windows at `count` different depths of the log:
    each starts from the window's end, not from a cursor."""
    latencies: list[float] = []
    for i in range(count):
        before = now - DAY_MS - (i * 28 * DAY_MS) // count
        started = time.perf_counter()
        resp = await http.get(
            path, params={"limit": limit, "after": before - DAY_MS, "before": before}
        )
        latencies.append((time.perf_counter() - started) * 1000)
        if resp.status_code != 200:
            return {"error": resp.status_code, "body": resp.text[:300]}
    return {
        "pages": len(latencies), "p50_ms": round(pct(latencies, 0.5), 2),
        "p99_ms": round(pct(latencies, 0.99), 2), "max_ms": round(max(latencies), 2),
    }  # fmt: skip


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    infra = start_infra()
    tmp = Path(tempfile.mkdtemp(prefix="authpi-bench-events-"))
    ns = new_namespace()
    schema = f"{ns}_webhook"
    ports = {name: free_port() for name in ("API", "IDP", "OPS")}
    env = {**WEBHOOK_ENV, **{f"AUTHPI_{n}_URL": f"http://127.0.0.1:{p}" for n, p in ports.items()}}
    results: dict[str, Any] = {"events": args.events}
    try:
        async with platform_process(1, tmp, infra, namespace=ns, settings=env) as up:
            creds = up.creds  # migrated and bootstrapped; stopped again to load
        account = creds["account_id"]
        results["load_seconds"] = round(
            await load(infra.dsn, schema, account, args.events, 10_000), 1
        )
        async with (
            platform_process(1, tmp, infra, namespace=ns, settings=env) as up,
            httpx.AsyncClient(
                base_url=up.api_url,
                auth=(creds["api_key_id"], creds["api_key_secret"]),
                timeout=30,
            ) as http,
        ):
            path = f"/v1/accounts/{account}/events"
            now = int(time.time() * 1000)
            scenarios = {
                "unfiltered": {},
                "issuer_id": {"issuer_id": "i_bench07"},
                "user_id": {"user_id": "usr_bench01234"},
                "client_id": {"client_id": "cli_bench042"},
                "event_types": {"event_types": "user.deleted,agent.created"},
                "after_before_1_day": {"after": now - 15 * DAY_MS, "before": now - 14 * DAY_MS},
                "issuer_and_type": {"issuer_id": "i_bench03", "event_types": "session.created"},
            }
            await scenario(http, path, {"limit": args.limit}, 20)  # warm-up
            for name, params in scenarios.items():
                results[name] = await scenario(
                    http, path, {"limit": args.limit, **params}, args.pages
                )
            results["window_first_pages"] = await first_pages(http, path, args.limit, now, 50)
    finally:
        infra.close()
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="bench_events")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=200, help="per scenario")
    parser.add_argument("--limit", type=int, default=50, help="page size (the API's default)")
    args = parser.parse_args(argv)
    uvloop.install()
    results = asyncio.run(measure(args))
    p99s = {k: v["p99_ms"] for k, v in results.items() if isinstance(v, dict) and "p99_ms" in v}
    results["targets"] = {"every p99 < 50 ms": bool(p99s) and max(p99s.values()) < 50}
    print(json.dumps(results, indent=2))
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "events.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
