"""The authenticated read benchmark (part of `make bench`): server CPU per request of the Core
API's hot reads and of introspection, through `authpi up` as shipped, against bare litestar
handlers doing the same authentication (tests/bench/bare_reads.py), measured the same way on the
same machine.

Scenarios, each a request that must answer 2xx:
- `me`: `GET /v1/me` with Basic authentication by an API key;
- `get_user`: `GET /v1/accounts/{a}/issuers/{i}/users/{u}`, the same key;
- `list_users`: `GET /v1/accounts/{a}/issuers/{i}/users` (one user), the same key;
- `introspect`: `POST /{issuer_id}/introspect` of an ES256 access token by the client it was
  issued to (client_secret_basic): answered `"active": true`. The tokens are a pool of
  `--tokens` distinct live tokens of that client (4096 by default), taken round-robin, as a
  resource server asks about the bearer tokens of the calls it serves. Each IdP process keeps the
  tokens whose signature it has verified (an LRU of 10,000, authpi.token.signing.verifier; expiry,
  revocation and the client are still checked on every call), so once a process has seen the
  pool every request is a cache hit: the figure is that of a working set smaller than the cache.
  The first round pays the misses (each token verified once in each process, so up to 2 x 4096
  with two IdP processes: up to 8% of its 102,582 requests in the recorded run); the later rounds
  are all hits, and the best round is the one reported (`runs` keeps both). The bare handlers
  keep the same cache (a dict of the verified claims), so `vs bare` compares the same work.

Servers: `authpi up` with the shipped defaults (one IdP process per core), the bare handlers
under uvicorn + httptools + uvloop (one process, like the Core API port) and, with
`--baseline-tree DIR`, a second `authpi up` running the code of DIR (an unpacked older commit:
`git archive <commit> | tar -x -C DIR`), so that the speed-up of a change is
measured in one run. Every run is `wrk -t1 -c64 -d5s` after a short warm-up; the rounds
interleave the servers, so that noise from the rest of the machine spreads over all of them; the
best round of each is reported.

Server CPU per request: utime + stime, read from /proc, of the serving processes and their
children, over a run, divided by the 2xx responses (PostgreSQL and NATS shown beside it). wrk
runs on the same cores, so rates are floors. Raw results go to bench-results/reads.json."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx
import uvloop

from authpi.embedded.servers import free_port
from authpi.platform.testing.process import Running, platform_process
from tests.bench.bench_peer import (
    ROOT,
    _nats_of,
    _stop,
    print_run,
    run_arguments,
    run_header,
    run_with_cpu,
    settled,
    summarize,
    tree_settings,
    wrk_or_hint,
)
from tests.bench.bench_tokens import WRK_HINT, set_up, wrk_script
from tests.bench.loadgen import ServerCpu

SCENARIOS = ("me", "get_user", "list_users", "introspect")
POOL_LUA = """
n = 0
request = function()
  n = n % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[n])
end
"""


class Server:
    """One server under load: its base URLs, the requests of each scenario, its processes."""

    def __init__(self, name: str, roots: list[int], requests: dict[str, dict[str, Any]]) -> None:
        self.name = name
        self.roots = roots
        self.requests = requests  # scenario -> {url, method, body, headers}
        self.runs: dict[str, list[dict[str, Any]]] = {s: [] for s in requests}


def _basic(name: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{secret}".encode()).decode()


async def _token_pool(http: httpx.AsyncClient, idp: str, auth: str, size: int) -> list[str]:
    """`size` distinct access tokens of the client (client_credentials), minted concurrently."""
    gate = asyncio.Semaphore(16)

    async def one() -> str:
        async with gate:
            resp = await http.post(
                f"{idp}/token", content="grant_type=client_credentials",
                headers={"Authorization": auth,
                         "Content-Type": "application/x-www-form-urlencoded"},
            )  # fmt: skip
            resp.raise_for_status()
            return str(resp.json()["access_token"])

    return list(await asyncio.gather(*(one() for _ in range(size))))


async def _tenant(running: Running, pool: int) -> dict[str, Any]:
    """An issuer with one user and an ES256 client, `pool` tokens of that client, the requests."""
    creds = running.creds
    tenant = await set_up(running)
    client_id, client_secret = tenant.clients["ES256"]
    key = _basic(creds["api_key_id"], creds["api_key_secret"])
    users = f"/v1/accounts/{creds['account_id']}/issuers/{tenant.issuer_id}/users"
    idp = f"{running.idp_url}/{tenant.issuer_id}"
    async with httpx.AsyncClient(base_url=running.api_url, timeout=10) as http:
        made = await http.post(
            users, json={"username_type": "email", "username": "bench-reader@example.test"},
            headers={"Authorization": key},
        )  # fmt: skip
        made.raise_for_status()
        user_id = made.json()["data"]["id"]
        tokens = await _token_pool(http, idp, _basic(client_id, client_secret), pool)
        jwks = (await http.get(f"{idp}/jwks.json")).json()
    client_auth = _basic(client_id, client_secret)
    requests = {
        "me": {"url": f"{running.api_url}/v1/me", "method": "GET", "auth": key},
        "get_user": {"url": f"{running.api_url}{users}/{user_id}", "method": "GET", "auth": key},
        "list_users": {"url": f"{running.api_url}{users}", "method": "GET", "auth": key},
        "introspect": {
            "url": f"{idp}/introspect", "method": "POST", "auth": client_auth,
            "body": f"token={quote_plus(tokens[0])}",
            "bodies": [f"token={quote_plus(t)}" for t in tokens],
        },
    }  # fmt: skip
    return {
        "requests": requests, "jwks": jwks, "issuer": idp, "client_id": client_id,
        "client_secret": client_secret, "key_id": creds["api_key_id"],
        "key_secret": creds["api_key_secret"],
    }  # fmt: skip


async def _answer(http: httpx.AsyncClient, request: dict[str, Any]) -> httpx.Response:
    headers = {"Authorization": request["auth"]}
    if request.get("body") is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    return await http.request(
        request["method"], request["url"], content=request.get("body"), headers=headers
    )


async def check(server: Server) -> dict[str, Any]:
    """Each scenario once: a 2xx (an active token for introspection), its JSON body kept."""
    bodies: dict[str, Any] = {}
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=10) as http:
        for scenario, request in server.requests.items():
            resp = await settled(lambda r=request: _answer(http, r), deadline)
            if resp.status_code != 200:
                raise RuntimeError(f"{server.name} {scenario}: {resp.status_code} {resp.text}")
            if scenario == "introspect" and resp.json().get("active") is not True:
                raise RuntimeError(f"{server.name} introspect: {resp.text}")
            bodies[scenario] = resp.json()
    return bodies


@contextlib.asynccontextmanager
async def authpi_server(
    name: str, work: Path, pool: int, tree: Path | None = None
) -> AsyncIterator[tuple[Server, dict[str, Any]]]:
    """`authpi up` as shipped; with `tree`, running the code of that unpacked checkout."""
    (work / name).mkdir()
    async with platform_process(None, work / name, settings=tree_settings(tree)) as running:
        tenant = await _tenant(running, pool)
        pid = running.proc.pid
        infra = [p.pid for p in (*ServerCpu(pid).roots, *_nats_of(pid))]
        server = Server(name, [pid, *infra], tenant["requests"])
        yield server, tenant


@contextlib.asynccontextmanager
async def bare_server(
    work: Path, tenant: dict[str, Any], bodies: dict[str, Any]
) -> AsyncIterator[Server]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = {
        "key_id": tenant["key_id"],
        "key_sha256": hashlib.sha256(tenant["key_secret"].encode()).hexdigest(),
        "client_id": tenant["client_id"],
        "client_sha256": hashlib.sha256(tenant["client_secret"].encode()).hexdigest(),
        "issuer": tenant["issuer"], "jwks": tenant["jwks"], "bodies": bodies,
    }  # fmt: skip
    env = {**os.environ, "BARE_READS": json.dumps(config)}
    log = work / "bare-reads.log"
    with open(log, "ab") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "uvicorn", "tests.bench.bare_reads:app", "--host", "127.0.0.1",
            "--port", str(port), "--workers", "1", "--http", "httptools", "--loop", "uvloop",
            "--no-access-log", "--no-server-header", "--log-level", "warning",
            cwd=ROOT, env=env, stdout=err, stderr=err,
        )  # fmt: skip
    requests = {}
    for scenario, request in tenant["requests"].items():
        path = "/" + request["url"].split("/", 3)[3]
        requests[scenario] = {**request, "url": base + path}
    server = Server("bare", [proc.pid], requests)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                await check(server)
                break
            except (httpx.HTTPError, RuntimeError):
                if proc.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the bare handlers did not start; see {log}") from None
                await asyncio.sleep(0.2)
        yield server
    finally:
        await _stop(proc)


async def measure(
    server: Server, scenario: str, wrk: str, work: Path, args: argparse.Namespace
) -> None:
    request = server.requests[scenario]
    script = wrk_script(
        work / "reads.lua", request["method"], request.get("body"),
        headers={"Authorization": request["auth"]},
    )  # fmt: skip
    if request.get("bodies"):
        with open(script, "a") as lua:  # round-robin over the pool
            lua.write("bodies = {" + ",".join(f'"{b}"' for b in request["bodies"]) + "}\n")
            lua.write(POOL_LUA)
    run, _, per = await run_with_cpu(wrk, script, request["url"], server.roots, args)
    run["cpu_us_per_request"] = per
    server.runs[scenario].append(run)
    print_run(f"{scenario} {server.name}", run, "request")


def summary(server: Server) -> dict[str, Any]:
    return {s: summarize(runs, "request") for s, runs in server.runs.items() if runs}


async def bench(args: argparse.Namespace, wrk: str) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="authpi-bench-reads-"))
    results = run_header(args)
    results["introspected_tokens"] = args.tokens
    try:
        async with contextlib.AsyncExitStack() as stack:
            ours, tenant = await stack.enter_async_context(
                authpi_server("authpi", work, args.tokens)
            )
            servers = [ours]
            if args.baseline_tree:
                old, _ = await stack.enter_async_context(
                    authpi_server("authpi-old", work, args.tokens, Path(args.baseline_tree))
                )
                servers.append(old)
            bodies = await check(ours)
            servers.append(await stack.enter_async_context(bare_server(work, tenant, bodies)))
            for server in servers:
                await check(server)
            for n in range(args.rounds):
                print(f"round {n + 1}/{args.rounds}", flush=True)
                for scenario in args.scenarios:
                    for server in servers:
                        await measure(server, scenario, wrk, work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["load_after"] = os.getloadavg()
    results["baseline_tree"] = args.baseline_tree
    results["runs"] = {s.name: s.runs for s in servers}
    results["summary"] = {s.name: summary(s) for s in servers}
    s = results["summary"]
    results["cpu_vs_bare"] = {
        name: {
            k: round(v["cpu_us_per_request_best"] / s["bare"][k]["cpu_us_per_request_best"], 2)
            for k, v in rows.items() if s["bare"].get(k, {}).get("cpu_us_per_request_best")
        }
        for name, rows in s.items()
    }  # fmt: skip
    if "authpi-old" in s:
        results["speedup_vs_baseline"] = {
            k: round(v["best_per_s"] / s["authpi-old"][k]["best_per_s"], 2)
            for k, v in s["authpi"].items() if s["authpi-old"].get(k, {}).get("best_per_s")
        }  # fmt: skip
    return results


def report(results: dict[str, Any]) -> None:
    print(
        f"\nauthenticated reads, wrk -t{results['wrk']['threads']}"
        f" -c{results['wrk']['connections']} -d{results['wrk']['seconds']:g}s,"
        f" {results['rounds']} rounds, {results['cpus']} cores"
    )
    print(
        f"{'scenario':11} {'server':12} {'best/s':>9} {'p99 ms':>7} {'CPU us/req':>10}"
        f" {'vs bare':>7}"
    )
    for name, rows in results["summary"].items():
        for scenario, row in rows.items():
            ratio = results["cpu_vs_bare"].get(name, {}).get(scenario, 0)
            print(
                f"{scenario:11} {name:12} {row['best_per_s']:>9.0f} {row['p99_ms_of_best']:>7.2f}"
                f" {row['cpu_us_per_request_best']:>10.1f} {ratio:>6.2f}x"
            )
    for scenario, ratio in results.get("speedup_vs_baseline", {}).items():
        print(f"{scenario}: {ratio:.2f}x the requests/s of {results['baseline_tree']}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="bench_reads")
    run_arguments(parser, seconds=5.0, rounds=2)
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--out", default="bench-results/reads.json")
    parser.add_argument(
        "--tokens", type=int, default=4096, help="distinct tokens introspected, round-robin"
    )
    args = parser.parse_args(argv)
    wrk = wrk_or_hint()
    if wrk is None:
        return {"skipped": WRK_HINT}
    results = uvloop.run(bench(args, wrk))
    report(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    failed = [
        f"{n} {k}"
        for n, rows in results["summary"].items()
        for k, v in rows.items()
        if v["non_2xx"]
    ]
    if failed:
        raise SystemExit(f"non-2xx responses from {', '.join(failed)}: the figures are not valid")
    return results


if __name__ == "__main__":
    main()
