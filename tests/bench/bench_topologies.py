"""The two topologies side by side (part of `make bench`): `authpi up` (all-in-one, the shipped
defaults: one IdP process per core) and `authpi up --distributed` (two gateway replicas on the
Core API port, forwarding to one process per service; two token replicas on the IdP port; a
three-node NATS cluster), both started here on free ports, each on PostgreSQL and NATS of its
own, each given the same tenant through the Core API (an issuer, an ES256 M2M client, one user),
and measured with the same scenarios:

- one at a time (the cost of the gateway hop): `me` (`GET /v1/me`), `get_user`, `list_users`
  (one user) and `create_user` (`POST .../users`, a new email each time), each with Basic
  authentication by the bootstrap API key, sent one after another by this process (aiohttp,
  keep-alive) after a warm-up; p50 and p99 of each (the lowest of the rounds). In the
  distributed run every one of them crosses the gateway (authentication, rate limit,
  idempotency, forwarding with the principal signed) to the directory's process: distributed -
  all-in-one is what that hop adds;
- under load: `token` (client_credentials of the ES256 client, `POST /{issuer}/token` with
  Basic client authentication, as in bench_peer) and the three reads, each `wrk -t1 -c64 -d5s`
  after a short warm-up: 2xx/s, p50, p99. The rounds interleave the topologies, so that noise
  from the rest of the machine spreads over both; the best round of each is reported.

Every answer must be 2xx (a non-2xx answer fails the bench). Server CPU per request: utime +
stime, read from /proc, of every process of the topology (`authpi up` and its IdP workers, or
`authpi up --distributed` and all its children) over a run, divided by the 2xx answers, with
PostgreSQL and NATS shown beside it, and beyond what the topology spends with no request at all
(measured first, `--idle-seconds`: the distributed run has a dozen processes following the bus,
which matters most when requests go one at a time and the processes are mostly idle).
wrk and this client run on the same cores, so rates are floors and CPU per request is the
steadier figure on a busy machine. Raw results go to bench-results/topologies.json.

`--requests N` (one at a time, per run; 1000), `--rounds`, `--seconds`, `--connections` as in
bench_reads (BENCH_TOPOLOGIES_ARGS in `make bench`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psutil
import uvloop

from authpi.embedded.servers import free_port
from authpi.platform.testing.process import Running, platform_process
from authpi.testing.infra import new_namespace
from tests.bench.bench import pct
from tests.bench.bench_peer import (
    BODY,
    ROOT,
    _nats_of,
    cpu_delta,
    run_arguments,
    run_header,
    run_with_cpu,
    settled,
    summarize,
    tree_cpu,
    wrk_or_hint,
)
from tests.bench.bench_reads import _basic, _tenant
from tests.bench.bench_tokens import WRK_HINT, wrk_script
from tests.bench.loadgen import ServerCpu

TOPOLOGIES = ("all-in-one", "distributed")
ONE_AT_A_TIME = ("me", "get_user", "list_users", "create_user")
UNDER_LOAD = ("token", "me", "get_user", "list_users")
START_TIMEOUT_S = 300.0


@dataclass
class Topology:
    """One running topology: its tenant's requests and the processes that serve them."""

    name: str
    running: Running
    roots: Callable[[], list[int]]
    requests: dict[str, dict[str, Any]]  # scenario -> {url, method, auth, body}
    users_url: str = ""
    idle_cpu_per_s: float = 0.0  # CPU seconds a second of every process, with no requests
    sequential: dict[str, list[dict[str, Any]]] = field(default_factory=dict[str, list[Any]])
    loaded: dict[str, list[dict[str, Any]]] = field(default_factory=dict[str, list[Any]])


async def _topology(name: str, running: Running, roots: Callable[[], list[int]]) -> Topology:
    tenant = await _tenant(running, 1)  # introspection is not measured here: one token
    requests = {k: v for k, v in tenant["requests"].items() if k != "introspect"}
    requests["token"] = {
        "url": f"{tenant['issuer']}/token", "method": "POST", "body": BODY,
        "auth": _basic(tenant["client_id"], tenant["client_secret"]),
    }  # fmt: skip
    return Topology(name, running, roots, requests, users_url=requests["list_users"]["url"])


@contextlib.asynccontextmanager
async def all_in_one(work: Path) -> AsyncIterator[Topology]:
    """`authpi up` as shipped (no AUTHPI_IDP_WORKERS), on embedded PostgreSQL and NATS."""
    (work / "all-in-one").mkdir()
    async with platform_process(None, work / "all-in-one") as running:
        pid = running.proc.pid
        infra = [p.pid for p in (*ServerCpu(pid).roots, *_nats_of(pid))]
        yield await _topology("all-in-one", running, lambda: [pid, *infra])


def _postgres_of(folder: Path) -> list[int]:
    """The PostgreSQL postmaster whose data lies in `folder` (it detaches from its starter)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info.get("cmdline") or []
        if cmd and cmd[0].endswith("postgres") and any(str(folder) in a for a in cmd):
            found.append(proc.pid)
    return found


@contextlib.asynccontextmanager
async def distributed(work: Path) -> AsyncIterator[Topology]:
    """`authpi up --distributed` as shipped, on free ports; only the per-address rate limit is
    raised (AUTHPI_RATE_LIMIT_MULTIPLIER), because every request comes from one address."""
    folder = work / "distributed"
    data = folder / ".authpi"
    data.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPI_")}
    env.update(
        AUTHPI_DATA_DIR=str(data), AUTHPI_NAMESPACE=new_namespace(),
        AUTHPI_API_URL=f"http://127.0.0.1:{free_port()}",
        AUTHPI_IDP_URL=f"http://127.0.0.1:{free_port()}",
        AUTHPI_LOG_FORMAT="json", AUTHPI_LOG_LEVEL="warning",
        AUTHPI_RATE_LIMIT_MULTIPLIER="1000",
    )  # fmt: skip
    out = folder / "up.out"
    log = folder / "up.log"
    with open(out, "ab") as stdout, open(log, "ab") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "authpi.platform.cli", "up", "--distributed",
            cwd=ROOT, env=env, stdout=stdout, stderr=stderr,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "AuthPI is up" not in out.read_text():
            if proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"authpi up --distributed did not start; see {log}")
            await asyncio.sleep(0.5)
        running = Running(proc, json.loads((data / "bootstrap.json").read_text()))
        postgres = _postgres_of(data)
        yield await _topology("distributed", running, lambda: [proc.pid, *postgres])
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 90)
            except TimeoutError:
                proc.kill()
                await proc.wait()


# --- one at a time ------------------------------------------------------------------------------


async def check(topology: Topology) -> None:
    """Each request once, until it answers 2xx (a client or key not learnt yet answers 401)."""
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=10) as http:
        for scenario, r in topology.requests.items():
            headers = {"Authorization": r["auth"]}
            if r.get("body") is not None:
                headers["Content-Type"] = "application/x-www-form-urlencoded"

            async def send(r: dict[str, Any] = r, h: dict[str, str] = headers) -> httpx.Response:
                return await http.request(r["method"], r["url"], content=r.get("body"), headers=h)

            resp = await settled(send, deadline)
            if resp.status_code != 200:
                raise RuntimeError(f"{topology.name} {scenario}: {resp.status_code} {resp.text}")


def _sender(
    topology: Topology, scenario: str, session: aiohttp.ClientSession
) -> Callable[[], Awaitable[int]]:
    if scenario == "create_user":
        auth = {"Authorization": topology.requests["me"]["auth"]}

        async def create() -> int:
            body = {"username_type": "email", "username": f"b-{uuid.uuid4().hex[:16]}@e.test"}
            async with session.post(topology.users_url, json=body, headers=auth) as resp:
                await resp.read()
                return resp.status

        return create
    r = topology.requests[scenario]
    headers = {"Authorization": r["auth"]}

    async def read() -> int:
        async with session.get(r["url"], headers=headers) as resp:
            await resp.read()
            return resp.status

    return read


async def one_at_a_time(topology: Topology, scenario: str, requests: int) -> None:
    async with aiohttp.ClientSession() as session:
        send = _sender(topology, scenario, session)
        for _ in range(min(100, requests)):  # warm the pools and caches
            status = await send()
            if status not in (200, 201):
                raise RuntimeError(f"{topology.name} {scenario}: {status}")
        samples: list[float] = []
        before = tree_cpu(topology.roots())
        began = time.perf_counter()
        for _ in range(requests):
            started = time.perf_counter()
            status = await send()
            samples.append((time.perf_counter() - started) * 1000)
            if status not in (200, 201):
                raise RuntimeError(f"{topology.name} {scenario}: {status}")
        elapsed = time.perf_counter() - began
        spent = cpu_delta(before, tree_cpu(topology.roots()))
    per = _per_request(spent, requests, topology.idle_cpu_per_s * elapsed)
    run = {
        "requests": requests, "p50_ms": round(pct(samples, 0.5), 3),
        "p99_ms": round(pct(samples, 0.99), 3), "mean_ms": round(sum(samples) / requests, 3),
        "seconds": round(elapsed, 3), "cpu_us_per_request": per,
    }  # fmt: skip
    topology.sequential.setdefault(scenario, []).append(run)
    print(
        f"  {scenario:11} {topology.name:11} p50 {run['p50_ms']:6.2f} ms  p99 {run['p99_ms']:6.2f}"
        f" ms  CPU {per.get('total', 0):7.1f} us/request ({per['net']:.1f} beyond idle)",
        flush=True,
    )


async def idle_cpu(topology: Topology, seconds: float) -> None:
    """CPU seconds a second that the topology's processes spend with no request in flight
    (followers, heartbeats, read-your-writes membership, NATS and PostgreSQL housekeeping)."""
    before = tree_cpu(topology.roots())
    await asyncio.sleep(seconds)
    spent = cpu_delta(before, tree_cpu(topology.roots()))
    topology.idle_cpu_per_s = round(sum(v for k, v in spent.items() if k != "gone") / seconds, 4)
    print(f"  idle        {topology.name:11} {topology.idle_cpu_per_s * 1000:.0f} ms CPU/s")


def _per_request(spent: dict[str, float], ok: int, idle: float) -> dict[str, float]:
    """CPU microseconds per 2xx answer: by group, in all (`total`), and beyond the `idle` CPU
    seconds the processes would have spent over the same time with no request (`net`)."""
    if not ok:
        return {}
    per = {k: round(v / ok * 1e6, 1) for k, v in spent.items() if k != "gone"}
    total = sum(v for k, v in spent.items() if k != "gone")
    per["total"] = round(total / ok * 1e6, 1)
    per["net"] = round(max(0.0, total - idle) / ok * 1e6, 1)
    return per


# --- under load ---------------------------------------------------------------------------------


async def under_load(
    topology: Topology, scenario: str, wrk: str, work: Path, args: argparse.Namespace
) -> None:
    r = topology.requests[scenario]
    script = wrk_script(
        work / "topologies.lua", r["method"], r.get("body"), headers={"Authorization": r["auth"]}
    )
    run, spent, _ = await run_with_cpu(wrk, script, r["url"], topology.roots(), args)
    idle = topology.idle_cpu_per_s * run["seconds"]
    per = _per_request(spent, run["requests"] - run["non_2xx"], idle)
    run["cpu_us_per_request"] = per
    topology.loaded.setdefault(scenario, []).append(run)
    print(
        f"  {scenario:11} {topology.name:11} {run['ok_per_s']:>8.0f} 2xx/s  p50"
        f" {run['p50_ms']:6.2f} ms  p99 {run['p99_ms']:6.2f} ms  CPU {per.get('total', 0):7.1f}"
        f" us/request ({per.get('net', 0):.1f} beyond idle)  non-2xx {run['non_2xx']}",
        flush=True,
    )


# --- the run ------------------------------------------------------------------------------------


def _best_sequential(runs: list[dict[str, Any]]) -> dict[str, Any]:
    # The least disturbed figure of each: the lowest p50 and the lowest p99 over the rounds.
    return {
        "p50_ms": min(r["p50_ms"] for r in runs), "p99_ms": min(r["p99_ms"] for r in runs),
        "p99_ms_max": max(r["p99_ms"] for r in runs),
        "cpu_us_per_request": min(r["cpu_us_per_request"].get("total", 0.0) for r in runs),
        "net_cpu_us_per_request": min(r["cpu_us_per_request"].get("net", 0.0) for r in runs),
        "server_cpu_us_per_request": min(
            r["cpu_us_per_request"].get("server", 0.0) for r in runs
        ),
    }  # fmt: skip


def _best_loaded(runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = max(runs, key=lambda r: r["ok_per_s"])
    out = summarize(runs, "request")
    out["p50_ms_of_best"] = best["p50_ms"]
    for key in ("total", "net"):
        out[f"cpu_us_per_request_{key}_best"] = min(
            r["cpu_us_per_request"].get(key, 0.0) for r in runs
        )
    return out


async def bench(args: argparse.Namespace, wrk: str) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="authpi-bench-topologies-"))
    results = run_header(args)
    results["requests_one_at_a_time"] = args.requests
    topologies: list[Topology] = []
    try:
        async with contextlib.AsyncExitStack() as stack:
            for start in (all_in_one, distributed):
                topologies.append(await stack.enter_async_context(start(work)))
            for topology in topologies:
                await check(topology)
            for topology in topologies:
                await idle_cpu(topology, args.idle_seconds)
            for n in range(args.rounds):
                print(f"round {n + 1}/{args.rounds}: one at a time", flush=True)
                for scenario in ONE_AT_A_TIME:
                    for topology in topologies:
                        await one_at_a_time(topology, scenario, args.requests)
                print(f"round {n + 1}/{args.rounds}: under load", flush=True)
                for scenario in UNDER_LOAD:
                    for topology in topologies:
                        await under_load(topology, scenario, wrk, work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["load_after"] = os.getloadavg()
    results["runs"] = {
        t.name: {"one_at_a_time": t.sequential, "under_load": t.loaded} for t in topologies
    }
    results["idle_cpu_ms_per_s"] = {t.name: round(t.idle_cpu_per_s * 1000, 1) for t in topologies}
    results["summary"] = {
        t.name: {
            "one_at_a_time": {s: _best_sequential(r) for s, r in t.sequential.items()},
            "under_load": {s: _best_loaded(r) for s, r in t.loaded.items()},
        }
        for t in topologies
    }
    aio, dist = (results["summary"][n]["one_at_a_time"] for n in TOPOLOGIES)
    results["gateway_hop"] = {
        s: {k: round(dist[s][k] - aio[s][k], 3) for k in ("p50_ms", "p99_ms")}
        for s in ONE_AT_A_TIME
    }
    return results


def report(results: dict[str, Any]) -> None:
    s = results["summary"]
    aio, dist = (s[n]["one_at_a_time"] for n in TOPOLOGIES)
    print(
        f"\nall-in-one (`authpi up`) vs distributed (`authpi up --distributed`), {results['cpus']}"
        f" cores, {results['rounds']} rounds, best of each; CPU: every process of the topology"
    )
    idle = results["idle_cpu_ms_per_s"]
    print(
        f"\nCore API, one request at a time ({results['requests_one_at_a_time']} each); CPU per"
        f" request beyond what the processes spend idle (all-in-one {idle['all-in-one']:.0f},"
        f" distributed {idle['distributed']:.0f} ms of CPU a second)"
    )
    print(
        f"{'scenario':12} {'all-in-one p50/p99 ms':>22} {'distributed p50/p99 ms':>23}"
        f" {'hop p50/p99 ms':>16} {'CPU us/req aio/dist':>20}"
    )
    for scenario in ONE_AT_A_TIME:
        a, d, hop = aio[scenario], dist[scenario], results["gateway_hop"][scenario]
        print(
            f"{scenario:12} {a['p50_ms']:>10.2f} /{a['p99_ms']:>9.2f} {d['p50_ms']:>11.2f} /"
            f"{d['p99_ms']:>9.2f} {hop['p50_ms']:>+7.2f} /{hop['p99_ms']:>+7.2f}"
            f" {a['net_cpu_us_per_request']:>9.0f} /{d['net_cpu_us_per_request']:>8.0f}"
        )
    w = results["wrk"]
    print(f"\nunder load: wrk -t{w['threads']} -c{w['connections']} -d{w['seconds']:g}s")
    print(
        f"{'scenario':12} {'topology':11} {'best 2xx/s':>10} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'CPU us/req':>10} {'beyond idle':>11} {'of it authpi':>12}"
    )
    for scenario in UNDER_LOAD:
        for name in TOPOLOGIES:
            row = s[name]["under_load"][scenario]
            print(
                f"{scenario:12} {name:11} {row['best_per_s']:>10.0f} {row['p50_ms_of_best']:>7.2f}"
                f" {row['p99_ms_of_best']:>7.2f} {row['cpu_us_per_request_total_best']:>10.0f}"
                f" {row['cpu_us_per_request_net_best']:>11.0f}"
                f" {row['cpu_us_per_request_best']:>12.0f}"
            )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="bench_topologies", description=__doc__)
    run_arguments(parser, seconds=5.0, rounds=2)
    parser.add_argument(
        "--requests", type=int, default=1000, help="Core API requests one at a time, per run"
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=3.0, help="CPU of each topology with no requests"
    )
    parser.add_argument("--out", default="bench-results/topologies.json")
    args = parser.parse_args(argv)
    wrk = wrk_or_hint()
    if wrk is None:
        return {"skipped": WRK_HINT}
    results = uvloop.run(bench(args, wrk))
    report(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    failed = [
        f"{name} {scenario}"
        for name, rows in results["summary"].items()
        for scenario, row in rows["under_load"].items()
        if row["non_2xx"]
    ]
    if failed:
        raise SystemExit(f"non-2xx responses from {', '.join(failed)}: the figures are not valid")
    return results


if __name__ == "__main__":
    main()
