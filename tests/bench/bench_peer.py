"""The side-by-side token benchmark (part of `make bench`): client_credentials tokens/s of
`authpi up` as shipped against node-oidc-provider and against a bare Python endpoint doing the
same work, measured the same way on the same machine.

Servers, all started here and all up at once (an idle server costs nothing):
- peer: the npm `oidc-provider` package (the version the Makefile installs into .venv/npm), two
  `cluster` workers, client_credentials with ES256 JWT access tokens through resource indicators
  (tests/bench/peer/oidc_provider.mjs);
- bare: tests.bench.bare_token, a plain ASGI app under uvicorn + httptools + uvloop with two
  workers: Basic auth, the secret's digest compared, the form parsed, an ES256 JWT signed, JSON
  back; nothing else. It is the floor of our request path;
- authpi: `authpi up` with the shipped defaults (no AUTHPI_IDP_WORKERS: one IdP process per
  core), on embedded PostgreSQL and NATS unless AUTHPI_DATABASE_URL / AUTHPI_NATS_URL are set.
  Only the per-address rate limit is raised (AUTHPI_RATE_LIMIT_MULTIPLIER), because every request
  comes from one address. ES256 and EdDSA clients and an agent (whose tokens are ES256).

Every request is the same: `POST .../token` with Basic client authentication and the form
`grant_type=client_credentials&scope=bench:read&resource=https://api.bench.example/`. Each run is
`wrk -t1 -c64 -d10s` (the defaults) after a short warm-up; every response must be 2xx (a non-2xx
answer fails the bench). Five rounds by default interleave the servers, so that noise from the
rest of the machine spreads over all of them; each figure is reported as its best and its spread
(the same code's CPU per token moves by 10-15% from one run to the next on a 2-core machine,
more than most changes measured here, so the best of three rounds was too often an unlucky one).

Server CPU per token: utime + stime, read from /proc, of the serving processes and their children
(the authpi processes; the node primary and workers; the uvicorn supervisor and workers) over a
run, divided by the 2xx responses. For authpi the embedded PostgreSQL and NATS are shown beside
it when they are this bench's own. wrk runs on the same cores, so rates are floors.

Raw results go to bench-results/peer.json; each run's ratio to the peer is appended to
bench-results/peer-history.jsonl, and a ratio more than 15% below the last recorded one is
reported as a regression (a report, not a gate: the machines are noisy)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import httpx
import jwt
import psutil
import uvloop

from authpi.embedded.servers import free_port
from authpi.platform.testing.process import platform_process
from tests.bench.bench_tokens import AGENT, SUBJECTS, WRK_HINT, run_wrk, set_up, wrk_script
from tests.bench.loadgen import ServerCpu
from tests.bench.loadgen import _group as process_group

ROOT = Path(__file__).resolve().parents[2]
PEER_SCRIPT = Path(__file__).with_name("peer") / "oidc_provider.mjs"
RESOURCE = "https://api.bench.example/"
SCOPE = "bench:read"
BODY = f"grant_type=client_credentials&scope={quote_plus(SCOPE)}&resource={quote_plus(RESOURCE)}"
REGRESSION = 0.15  # a ratio this much below the last recorded one is reported


@dataclass
class Target:
    """One token scenario: where to send it, as whom, and which processes serve it."""

    name: str
    server: str
    url: str
    client_id: str
    secret: str
    roots: Callable[[], list[int]]
    alg: str = "ES256"
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def authorization(self) -> str:
        pair = f"{quote(self.client_id, safe='')}:{quote(self.secret, safe='')}"
        return "Basic " + base64.b64encode(pair.encode()).decode()


# --- CPU from /proc ----------------------------------------------------------------------------


def _group(proc: psutil.Process) -> str:
    """postgres, nats, or server (whatever serves the requests: python, node)."""
    group = process_group(proc)
    return "server" if group == "authpi" else group


def tree_cpu(roots: list[int]) -> dict[int, tuple[str, float]]:
    """utime + stime (and that of reaped children) of `roots` and all their descendants, by pid,
    from /proc (psutil)."""
    seen: dict[int, tuple[str, float]] = {}
    for pid in roots:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for proc in procs:
            if proc.pid in seen:
                continue
            try:
                t = proc.cpu_times()
                spent = t.user + t.system + t.children_user + t.children_system
                seen[proc.pid] = (_group(proc), spent)
            except psutil.Error:
                continue
    return seen


def cpu_delta(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict:
    groups: dict[str, float] = {}
    for pid, (group, spent) in after.items():
        groups[group] = groups.get(group, 0.0) + spent - before.get(pid, (group, 0.0))[1]
    return groups


# --- the servers -------------------------------------------------------------------------------


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def node_modules() -> Path:
    return Path(sys.prefix) / "npm" / "node_modules"


def peer_version() -> str | None:
    package = node_modules() / "oidc-provider" / "package.json"
    return json.loads(package.read_text())["version"] if package.exists() else None


@contextlib.asynccontextmanager
async def peer_server(work: Path, workers: int) -> AsyncIterator[Target]:
    port = free_port()
    log = work / "peer.log"
    with open(log, "ab") as err:
        proc = await asyncio.create_subprocess_exec(
            "node", str(PEER_SCRIPT), str(node_modules()), str(port), str(workers),
            stdout=asyncio.subprocess.PIPE, stderr=err,
        )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not line:
            raise RuntimeError(f"node-oidc-provider did not start; see {log}")
        info = json.loads(line)
        yield Target(
            "peer ES256", "peer", f"http://127.0.0.1:{port}/token", info["client_id"],
            info["client_secret"], lambda: [proc.pid],
        )  # fmt: skip
    finally:
        await _stop(proc)


@contextlib.asynccontextmanager
async def bare_server(work: Path, workers: int) -> AsyncIterator[Target]:
    from cryptography.hazmat.primitives import serialization

    from authpi.token.signing.keys import generate

    port = free_port()
    secret = secrets.token_urlsafe(32)
    pem = generate("ES256").private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip
    env = {
        **os.environ, "BARE_CLIENT_ID": "c_bare", "BARE_KEY_PEM": pem.decode(),
        "BARE_SECRET_SHA256": hashlib.sha256(secret.encode()).hexdigest(),
        "BARE_ISSUER": f"http://127.0.0.1:{port}/i_bare",
    }  # fmt: skip
    log = work / "bare.log"
    with open(log, "ab") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "uvicorn", "tests.bench.bare_token:app", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--http", "httptools",
            "--loop", "uvloop", "--no-access-log", "--no-server-header", "--log-level", "warning",
            cwd=ROOT, env=env, stdout=err, stderr=err,
        )  # fmt: skip
    target = Target(
        "bare ES256", "bare", f"http://127.0.0.1:{port}/token", "c_bare", secret,
        lambda: [proc.pid],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=5) as http:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await _token(http, target)).status_code == 200:
                        break
                if proc.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the bare endpoint did not start; see {log}")
                await asyncio.sleep(0.2)
        yield target
    finally:
        await _stop(proc)


def tree_settings(tree: Path | None) -> dict[str, str]:
    """The environment that runs `authpi up` on the code of `tree`, an unpacked older checkout
    (`git archive <commit> | tar -x -C DIR`), ahead of the installed one; nothing for None."""
    if tree is None:
        return {}
    return {"PYTHONPATH": os.pathsep.join(sorted(str(p) for p in tree.glob("*/*/src")))}


@contextlib.asynccontextmanager
async def authpi_server(
    work: Path, workers: int | None, tree: Path | None = None, label: str = "authpi"
) -> AsyncIterator[list[Target]]:
    """`authpi up` as shipped (workers None) with an ES256 and an EdDSA client and an agent; with
    `tree`, on the code of that older checkout."""
    work = work / label
    work.mkdir()
    async with platform_process(workers, work, settings=tree_settings(tree)) as running:
        tenant = await set_up(running)
        pid = running.proc.pid
        infra = [*ServerCpu(pid).roots, *_nats_of(pid)]

        def roots() -> list[int]:
            return [pid, *(p.pid for p in infra)]

        url = f"{running.idp_url}/{tenant.issuer_id}/token"
        targets = []
        for subject in SUBJECTS:
            client_id, secret = tenant.clients[subject]
            alg = "ES256" if subject == AGENT else subject
            targets.append(Target(f"{label} {subject}", label, url, client_id, secret, roots, alg))
        yield targets


def _nats(proc: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return "nats" in proc.name()
    return False


def _nats_of(platform_pid: int) -> list[psutil.Process]:
    """The embedded NATS server (a child of this process) that `authpi up` at `platform_pid`
    uses, found by the port of its AUTHPI_NATS_URL."""
    try:
        port = urlsplit(psutil.Process(platform_pid).environ()["AUTHPI_NATS_URL"]).port
    except (psutil.Error, KeyError, ValueError):
        return []
    found = []
    for proc in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if _nats(proc) and str(port) in proc.cmdline():
                found.append(proc)
    return found


def idp_processes(pid: int) -> int:
    """The processes serving the IdP port of `authpi up` at `pid`: itself and its IdP workers."""
    workers = 0
    for child in psutil.Process(pid).children():
        with contextlib.suppress(psutil.Error):
            workers += "authpi.platform.workers" in " ".join(child.cmdline())
    return 1 + workers


async def _token(http: httpx.AsyncClient, target: Target) -> httpx.Response:
    return await http.post(
        target.url, content=BODY,
        headers={
            "Authorization": target.authorization,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )  # fmt: skip


async def settled(send: Callable[[], Awaitable[httpx.Response]], deadline: float) -> httpx.Response:
    """`send()`'s answer once it is neither 401 nor 429 (a client or key the IdP processes have
    not all learnt yet), or the last one at `deadline` (time.monotonic)."""
    while True:
        resp = await send()
        if resp.status_code not in (401, 429) or time.monotonic() > deadline:
            return resp
        await asyncio.sleep(0.1)


async def check_token(target: Target) -> None:
    """One request before the load: a 200 whose access token is a JWT of the expected algorithm
    with the requested audience."""
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await settled(lambda: _token(http, target), time.monotonic() + 60)
    if resp.status_code != 200:
        raise RuntimeError(f"{target.name}: {resp.status_code} {resp.text}")
    token = resp.json()["access_token"]
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    if header["alg"] != target.alg or header.get("typ") != "at+jwt" or claims["aud"] != RESOURCE:
        raise RuntimeError(f"{target.name}: unexpected token {header} {claims}")


# --- the runs ----------------------------------------------------------------------------------


async def run_with_cpu(
    wrk: str, script: Path, url: str, roots: list[int], args: argparse.Namespace
) -> tuple[dict[str, Any], dict[str, float], dict[str, float]]:
    """A warm-up, then the run (`args.threads`, `.connections`, `.seconds`, `.warmup`) with the
    CPU of `roots` and their children over it: (wrk's figures, CPU seconds by group, CPU
    microseconds per 2xx answer by group). The script (it holds a secret) is removed."""
    try:
        await run_wrk(wrk, script, url, threads=1, connections=8, seconds=args.warmup)
        before = tree_cpu(roots)
        run = await run_wrk(
            wrk, script, url, threads=args.threads, connections=args.connections,
            seconds=args.seconds,
        )  # fmt: skip
        spent = cpu_delta(before, tree_cpu(roots))
    finally:
        script.unlink(missing_ok=True)
    ok = run["requests"] - run["non_2xx"]
    per = {k: round(v / ok * 1e6, 1) for k, v in spent.items()} if ok else {}
    return run, spent, per


async def measure(target: Target, wrk: str, work: Path, args: argparse.Namespace) -> None:
    headers = {"Authorization": target.authorization}
    script = wrk_script(work / "run.lua", "POST", BODY, headers=headers)
    run, spent, per = await run_with_cpu(wrk, script, target.url, target.roots(), args)
    ok = run["requests"] - run["non_2xx"]
    run["cpu_s"] = {k: round(v, 3) for k, v in spent.items()}
    run["cpu_us_per_token"] = per
    if ok:
        run["cpu_us_per_token"]["total"] = round(sum(spent.values()) / ok * 1e6, 1)
    target.runs.append(run)
    print_run(target.name, run, "token")


def print_run(label: str, run: dict[str, Any], unit: str) -> None:
    """One run's line: rate, p99, the serving processes' CPU per `unit` (token, request)."""
    cpu = run[f"cpu_us_per_{unit}"].get("server", 0)
    print(
        f"  {label:24} {run['ok_per_s']:>9.1f} 2xx/s  p99 {run['p99_ms']:6.2f} ms  "
        f"server CPU {cpu:6.1f} us/{unit}  "
        f"non-2xx {run['non_2xx']}  socket errors {run['socket_errors']}",
        flush=True,
    )


def summarize(runs: list[dict[str, Any]], unit: str) -> dict[str, Any]:
    """Best rate (and its p99), spread, and the lowest and highest CPU per `unit` of the runs."""
    rates = [r["ok_per_s"] for r in runs]
    p99s = [r["p99_ms"] for r in runs]
    cpus = [r[f"cpu_us_per_{unit}"].get("server", 0.0) for r in runs]
    best = max(runs, key=lambda r: r["ok_per_s"])
    return {
        "best_per_s": best["ok_per_s"], "min_per_s": min(rates),
        "median_per_s": statistics.median(rates), "p99_ms_of_best": best["p99_ms"],
        "p99_ms_min": min(p99s), "p99_ms_max": max(p99s),
        f"cpu_us_per_{unit}_best": min(cpus), f"cpu_us_per_{unit}_max": max(cpus),
        "non_2xx": sum(r["non_2xx"] for r in runs),
        "socket_errors": sum(r["socket_errors"] for r in runs),
    }  # fmt: skip


def summary(target: Target) -> dict[str, Any]:
    out = summarize(target.runs, "token")
    totals = [r["cpu_us_per_token"].get("total", 0.0) for r in target.runs]
    if any(r["cpu_us_per_token"].keys() - {"server", "total"} for r in target.runs):
        out["cpu_us_per_token_with_infra_best"] = min(totals)
    return out


def regression(history: Path, ratio: float) -> dict[str, Any]:
    """The ratio to the peer against the last recorded one (a report, not a gate)."""
    last: dict[str, Any] | None = None
    if history.exists():
        for line in history.read_text().splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and isinstance(entry.get("ratio"), int | float):
                    last = entry
    if last is None:
        return {"previous": None, "regressed": False}
    change = ratio / last["ratio"] - 1
    return {
        "previous": last["ratio"], "previous_when": last.get("when"),
        "previous_commit": last.get("commit"), "change": round(change, 3),
        "regressed": change < -REGRESSION,
    }  # fmt: skip


def _commit() -> str | None:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, check=True
        )
        return out.stdout.decode().strip()
    return None


def run_header(args: argparse.Namespace) -> dict[str, Any]:
    """What a run's results start with: the machine, the commit, the time, the wrk options and
    the load average before it (the machine is shared: its load says how far to trust rates)."""
    return {
        "cpus": os.cpu_count(), "commit": _commit(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wrk": {"threads": args.threads, "connections": args.connections, "seconds": args.seconds},
        "rounds": args.rounds, "load_before": os.getloadavg(),
    }  # fmt: skip


async def bench(args: argparse.Namespace, wrk: str) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="authpi-bench-peer-"))
    results: dict[str, Any] = {
        **run_header(args), "body": BODY, "client_auth": "client_secret_basic",
    }  # fmt: skip
    try:
        async with contextlib.AsyncExitStack() as stack:
            targets: list[Target] = []
            if not args.no_peer:
                targets.append(
                    await stack.enter_async_context(peer_server(work, args.peer_workers))
                )
            targets.append(await stack.enter_async_context(bare_server(work, args.bare_workers)))
            ours = await stack.enter_async_context(authpi_server(work, args.workers))
            targets += ours
            if args.baseline_tree:
                targets += await stack.enter_async_context(
                    authpi_server(work, args.workers, Path(args.baseline_tree), "old")
                )
            results["servers"] = {
                "peer": {"package": "oidc-provider", "version": peer_version(),
                         "workers": args.peer_workers, "node": _node_version()},
                "bare": {"server": "uvicorn+httptools+uvloop", "workers": args.bare_workers},
                "authpi": {"idp_processes": idp_processes(ours[0].roots()[0]),
                           "AUTHPI_IDP_WORKERS": args.workers or "unset (shipped default)"},
            }  # fmt: skip
            for target in targets:
                await check_token(target)
            for n in range(args.rounds):
                print(f"round {n + 1}/{args.rounds}", flush=True)
                for target in targets:
                    await measure(target, wrk, work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["load_after"] = os.getloadavg()
    results["runs"] = {t.name: t.runs for t in targets}
    results["summary"] = {t.name: summary(t) for t in targets}
    s = results["summary"]
    bare = s["bare ES256"]["cpu_us_per_token_best"]
    results["cpu_vs_bare"] = {
        t.name: round(s[t.name]["cpu_us_per_token_best"] / bare, 2) for t in targets if bare
    }
    if "peer ES256" in s:
        peer = s["peer ES256"]["best_per_s"]
        results["ratio_to_peer"] = {
            t.name: round(s[t.name]["best_per_s"] / peer, 2) for t in targets if peer
        }
    return results


def _node_version() -> str | None:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        return (
            subprocess.run(["node", "--version"], capture_output=True, check=True)
            .stdout.decode()
            .strip()
        )
    return None


def report(results: dict[str, Any]) -> None:
    s = results["summary"]
    print(
        f"\nclient_credentials, wrk -t{results['wrk']['threads']} -c{results['wrk']['connections']}"
        f" -d{results['wrk']['seconds']:g}s, {results['rounds']} rounds, {results['cpus']} cores;"
        f" authpi up with {results['servers']['authpi']['idp_processes']} IdP processes"
    )
    print(
        f"{'server':16} {'best/s':>9} {'spread/s':>17} {'p99 ms':>7} {'p99 spread':>13} "
        f"{'CPU us/token':>12} {'vs bare':>7} {'vs peer':>7}"
    )
    for name, row in s.items():
        ratio = results.get("ratio_to_peer", {}).get(name)
        spread = f"{row['min_per_s']:.0f}-{row['best_per_s']:.0f}"
        p99 = f"{row['p99_ms_min']:.2f}-{row['p99_ms_max']:.2f}"
        line = (
            f"{name:16} {row['best_per_s']:>9.0f} {spread:>17} {row['p99_ms_of_best']:>7.2f}"
            f" {p99:>13} {row['cpu_us_per_token_best']:>12.1f}"
            f" {results['cpu_vs_bare'].get(name, 0):>6.2f}x"
        )
        if ratio is not None:
            line += f" {ratio:>6.2f}x"
        if "cpu_us_per_token_with_infra_best" in row:
            line += f"  (with PostgreSQL+NATS {row['cpu_us_per_token_with_infra_best']:.1f})"
        print(line)
    reg = results.get("regression")
    if reg and reg["previous"] is not None:
        line = (
            f"ratio to the peer {results['ratio_to_peer']['authpi ES256']:.2f}x, last recorded "
            f"{reg['previous']:.2f}x ({reg['change']:+.0%})"
        )
        if reg["regressed"]:
            print(f"WARNING: regression: {line}, more than {REGRESSION:.0%} down")
        else:
            print(line)


def wrk_or_hint() -> str | None:
    """wrk's path, or None after telling how to install it."""
    wrk = shutil.which("wrk")
    if wrk is None:
        print(WRK_HINT, file=sys.stderr)
    return wrk


def run_arguments(parser: argparse.ArgumentParser, *, seconds: float, rounds: int) -> None:
    """The wrk runs' options (`run_with_cpu`) and `--baseline-tree`, shared by the benches that
    put `authpi up` beside a floor."""
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=seconds)
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before each run")
    parser.add_argument(
        "--rounds", type=int, default=rounds, help="runs of each server, interleaved"
    )
    parser.add_argument(
        "--baseline-tree", default=None,
        help="an older checkout unpacked with `git archive <commit> | tar -x -C DIR`, run beside"
        " the current code in the same run",
    )  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="bench_peer")
    run_arguments(parser, seconds=10.0, rounds=5)
    parser.add_argument(
        "--workers", type=int, default=None,
        help="AUTHPI_IDP_WORKERS for authpi up (default: unset, the shipped default)",
    )  # fmt: skip
    parser.add_argument("--peer-workers", type=int, default=2)
    parser.add_argument("--bare-workers", type=int, default=2)
    parser.add_argument("--no-peer", action="store_true", help="without node-oidc-provider")
    parser.add_argument("--out", default="bench-results/peer.json")
    parser.add_argument("--history", default="bench-results/peer-history.jsonl")
    args = parser.parse_args(argv)
    wrk = wrk_or_hint()
    if wrk is None:
        return {"skipped": WRK_HINT}
    if not args.no_peer and (shutil.which("node") is None or peer_version() is None):
        print("node-oidc-provider is not installed: run `make venv` (npm, into .venv/npm)")
        args.no_peer = True
    results = uvloop.run(bench(args, wrk))
    history = Path(args.history)
    ratio = results.get("ratio_to_peer", {}).get("authpi ES256")
    if ratio is not None and args.workers is None:
        results["regression"] = regression(history, ratio)
    report(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    if ratio is not None and args.workers is None:
        entry = {"when": results["when"], "commit": results["commit"], "ratio": ratio}
        entry["per_s"] = {k: v["best_per_s"] for k, v in results["summary"].items()}
        with history.open("a") as f:
            f.write(json.dumps(entry) + "\n")
    failed = [k for k, v in results["summary"].items() if v["non_2xx"]]
    if failed:
        raise SystemExit(f"non-2xx responses from {', '.join(failed)}: the figures are not valid")
    return results


if __name__ == "__main__":
    main()
