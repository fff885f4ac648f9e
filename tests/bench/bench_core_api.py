"""The Core API benchmark (part of `make bench`): p50/p99 latency and requests/s through real HTTP
against an all-in-one Platform on 127.0.0.1, started as the `platform` test fixture starts it.

Scenarios: GET /healthz (no authentication: the baseline), GET /v1/me (the cost of API-key
authentication per request), POST A/api-keys (a write: event, inline projections, relay) and
GET A/api-keys (a list page). The load runs in a separate process (httpx, fixed concurrency),
so the client's CPU is not the server's; each scenario is bounded by time and by request count."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
import uvloop

from authpi.config import Settings
from authpi.observability import configure_logging
from authpi.platform.bootstrap import account_bootstrap, ensure_bootstrap
from authpi.platform.host import Platform
from authpi.testing.infra import new_namespace, start_infra
from tests.bench.bench import pct
from tests.bench.bench_tokens import run_wrk, wrk_script

SCENARIOS = (
    "healthz", "me", "create_api_key", "list_api_keys", "create_user", "get_user", "list_users",
)  # fmt: skip
# Keys created by the write scenario stay in the database: keep the count modest.
MAX_CREATES = 2_000


class Target(msgspec.Struct, kw_only=True):
    account_id: str
    issuer_id: str = ""
    user_id: str = ""


def _request(scenario: str, target: Target, i: int) -> tuple[str, str, dict[str, Any] | None]:
    keys = f"/v1/accounts/{target.account_id}/api-keys"
    users = f"/v1/accounts/{target.account_id}/issuers/{target.issuer_id}/users"
    match scenario:
        case "create_user":
            return (
                "POST",
                users,
                {"username_type": "email", "username": f"bench-{i}-{time.time_ns()}@example.test"},
            )
        case "get_user":
            return "GET", f"{users}/{target.user_id}", None
        case "list_users":
            return "GET", users, None
        case "healthz":
            return "GET", "/healthz", None
        case "me":
            return "GET", "/v1/me", None
        case "create_api_key":
            return "POST", keys, {"name": f"bench-{i}", "restrictions": {}}
        case _:  # list_api_keys
            return "GET", keys, None


async def run_scenario(
    http: httpx.AsyncClient, scenario: str, target: Target, *, seconds: float,
    max_requests: int, concurrency: int,
) -> dict[str, Any]:  # fmt: skip
    latencies: list[float] = []
    errors = 0
    issued = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors, issued
        while time.perf_counter() < deadline and issued < max_requests:
            method, path, body = _request(scenario, target, issued)
            issued += 1
            started = time.perf_counter()
            resp = await http.request(method, path, json=body)
            latencies.append((time.perf_counter() - started) * 1000)
            errors += resp.status_code >= 400

    for _ in range(min(20, max_requests)):  # warm-up: connections and caches
        method, path, _ = _request(scenario, target, -1)
        if method == "GET":
            await http.request(method, path)
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": len(latencies) / elapsed if elapsed else 0.0,
        "p50_ms": pct(latencies, 0.50),
        "p99_ms": pct(latencies, 0.99),
        "concurrency": concurrency,
    }


async def _setup(http: httpx.AsyncClient, account_id: str) -> Target:
    """One issuer and one user for the user scenarios."""
    issuer = await http.post(f"/v1/accounts/{account_id}/issuers", json={"name": "bench"})
    issuer.raise_for_status()
    issuer_id = issuer.json()["data"]["id"]
    users = f"/v1/accounts/{account_id}/issuers/{issuer_id}/users"
    user = await http.post(
        users, json={"username_type": "email", "username": "bench-user@example.test"}
    )
    user.raise_for_status()
    return Target(account_id=account_id, issuer_id=issuer_id, user_id=user.json()["data"]["id"])


async def load(args: argparse.Namespace) -> None:
    """The load process: every scenario in turn against `args.url`, results to `args.out`."""
    token = base64.b64encode(f"{args.key_id}:{args.secret}".encode()).decode()
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    results: dict[str, Any] = {}
    async with httpx.AsyncClient(
        base_url=args.url, headers={"Authorization": f"Basic {token}"}, limits=limits, timeout=30
    ) as http:
        target = await _setup(http, args.account_id)
        for scenario in SCENARIOS:
            cap = (
                min(args.max_requests, MAX_CREATES)
                if scenario.startswith("create_")
                else args.max_requests
            )
            results[scenario] = await run_scenario(
                http, scenario, target, seconds=args.seconds, max_requests=cap,
                concurrency=args.concurrency,
            )  # fmt: skip
    me, base = results["me"], results["healthz"]
    results["api_key_auth_overhead_p50_ms"] = me["p50_ms"] - base["p50_ms"]
    results["target"] = msgspec.to_builtins(target)
    Path(args.out).write_text(json.dumps(results, indent=2))


async def serve_and_measure(seconds: float, max_requests: int, concurrency: int) -> dict[str, Any]:
    infra = start_infra()
    data_dir = Path(tempfile.mkdtemp(prefix="authpi-bench-api-"))
    settings = Settings(
        data_dir=data_dir, database_url=infra.dsn, nats_url=infra.nats_url,
        api_url="http://127.0.0.1:0", idp_url="http://127.0.0.1:0", namespace=new_namespace(),
        rate_limit_multiplier=1000.0,  # measure the service, not the limiter
    )  # fmt: skip
    platform = Platform(settings)
    try:
        await platform.start()
        _, creds, _ = await ensure_bootstrap(
            account_bootstrap(platform.parts), settings, platform.api_url, platform.idp_url
        )
        assert creds is not None, "a fresh namespace is bootstrapped"
        out = data_dir / "core-api.json"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.bench.bench_core_api", "--load",
            "--url", platform.api_url, "--account-id", creds["account_id"],
            "--key-id", creds["api_key_id"], "--secret", creds["api_key_secret"],
            "--seconds", str(seconds), "--max-requests", str(max_requests),
            "--concurrency", str(concurrency), "--out", str(out),
        )  # fmt: skip
        if await proc.wait() != 0:
            raise RuntimeError("the Core API load process failed")
        results: dict[str, Any] = json.loads(out.read_text())
        results["wrk"] = await wrk_reads(platform.api_url, creds, Target(**results.pop("target")))
        return results
    finally:
        await platform.stop()
        infra.close()


async def wrk_reads(api_url: str, creds: dict[str, Any], target: Target) -> dict[str, Any]:
    """The read scenarios again with wrk (C, two threads, 16 connections): the httpx load
    generator tops out near 500 to 1,000 requests/s on this machine, well below the server."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return {"skipped": "wrk is not installed (Debian package `wrk`)"}
    token = base64.b64encode(f"{creds['api_key_id']}:{creds['api_key_secret']}".encode())
    headers = {"Authorization": f"Basic {token.decode()}"}
    runs: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="authpi-bench-api-wrk-"))
    try:
        for scenario in ("healthz", "me", "get_user", "list_users"):
            _, path, _ = _request(scenario, target, 0)
            script = wrk_script(work / f"{scenario}.lua", "GET", None, headers=headers)
            await run_wrk(wrk, script, api_url + path, threads=1, connections=4, seconds=1)
            runs[scenario] = await run_wrk(
                wrk, script, api_url + path, threads=2, connections=16, seconds=5
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    runs["api_key_auth_overhead_p50_ms"] = round(
        runs["me"]["p50_ms"] - runs["healthz"]["p50_ms"], 3
    )
    return runs


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(prog="bench_core_api")
    parser.add_argument("--seconds", type=float, default=5.0, help="per scenario")
    parser.add_argument("--max-requests", type=int, default=20_000, help="per scenario")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    for name in ("--url", "--account-id", "--key-id", "--secret", "--out"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    uvloop.install()
    if args.load:
        asyncio.run(load(args))
        return None
    configure_logging("console", "warning")
    results = asyncio.run(serve_and_measure(args.seconds, args.max_requests, args.concurrency))
    print(json.dumps(results, indent=2))
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "core-api.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
