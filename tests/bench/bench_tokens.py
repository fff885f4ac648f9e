"""The token benchmark (part of `make bench`): tokens/s and latency of the IdP token endpoint
through real HTTP, measured with `wrk`, against `authpi up` started as a subprocess with
AUTHPI_IDP_WORKERS processes on the IdP port (default 2), plus the pure signing floor.

Set-up through the Core API with the official authpi-admin SDK: one issuer, and one M2M client
(client_credentials) per algorithm, ES256 and EdDSA. Each scenario is
`POST {idp_url}/{issuer_id}/token` with `grant_type=client_credentials&client_id&client_secret`
(client_secret_post), a form body from a wrk Lua script in a private temporary directory.

Two runs per algorithm:
- max: `wrk -t{threads} -c{connections} -d{seconds}`: the saturated rate.
- half: wrk is closed-loop (no rate limit; wrk2's -R is not packaged), so the load is lowered by
  lowering the connection count: short probes with 1, 2, 4, ... connections, and the full run at
  the count whose rate is nearest half the max rate. Its latency is that of a server at about half
  load; the achieved rate and the connection count are reported beside it.
Until the token endpoint answers 200 the HTTP scenario is `GET {issuer_id}/jwks.json` (reported
as such); `--scenario jwks` forces it.

The signing floor signs access-token-shaped claims in-process with the token service's
`sign_jwt` (what TokenSigner calls), one core, no HTTP: the most any single process can issue.

wrk and the servers share this machine's cores: the figures are a floor for the server. Without
`wrk` (Debian package `wrk`) the HTTP part is skipped with a hint; the floor is still measured."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote_plus

import httpx
import uvloop

from authpi.platform.testing.process import Running, platform_process
from authpi.testing.plugin import eventually

ALGS = ("ES256", "EdDSA")
AGENT = "agent"
SUBJECTS = (*ALGS, AGENT)  # the token scenarios: one client per algorithm, and an agent
SCOPES = ["bench:read"]
WRK_HINT = "wrk is not installed: `sudo apt-get install wrk` (Debian/Ubuntu package `wrk`)"
DONE_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"non_2xx":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"max_us":%d,"mean_us":%.1f}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""


# --- the signing floor -------------------------------------------------------------------------


def signing_floor(seconds: float) -> dict[str, Any]:
    """Signs per second of one access token, in this process, per algorithm."""
    from authpi.token.signing.keys import generate, sign_jwt

    results: dict[str, Any] = {}
    per_alg = seconds / len(ALGS)
    for alg in ALGS:
        key = generate(alg)
        now = int(time.time())
        claims = {
            "iss": "http://127.0.0.1:8001/i_bench", "sub": "c_bench", "aud": "c_bench",
            "client_id": "c_bench", "scope": "bench:read", "iat": now, "auth_time": now,
            "exp": now + 1800, "jti": "0123456789abcdefgh",
        }  # fmt: skip
        for _ in range(50):  # warm-up
            sign_jwt(key, "k_bench", alg, claims, "at+jwt")
        count = 0
        started = time.perf_counter()
        deadline = started + per_alg
        while time.perf_counter() < deadline:
            for _ in range(100):
                sign_jwt(key, "k_bench", alg, claims, "at+jwt")
            count += 100
        elapsed = time.perf_counter() - started
        results[alg] = {"signs_per_s": round(count / elapsed), "us_per_sign": elapsed / count * 1e6}
    return results


class Tenant:
    def __init__(self, issuer_id: str, clients: dict[str, tuple[str, str]]) -> None:
        self.issuer_id = issuer_id
        self.clients = clients  # alg -> (client_id, secret)


async def set_up(running: Running) -> Tenant:
    """An issuer and one M2M client per algorithm, through the Core API and the SDK."""
    from authpi_admin import AuthPIAdmin

    creds = running.creds
    async with AuthPIAdmin(
        api_key=(creds["api_key_id"], creds["api_key_secret"]), account_id=creds["account_id"],
        base_url=running.api_url, retries=False,
    ) as admin:  # fmt: skip
        issuer = await admin.issuers.create({"name": "bench-tokens"})
        clients: dict[str, tuple[str, str]] = {}
        for alg in ALGS:
            client = await admin.issuer(issuer.id).clients.create(
                {
                    "name": f"bench-{alg}", "type": "m2m",
                    "settings": {
                        "grant_types": ["client_credentials"], "response_signature_alg": alg,
                        "scopes": SCOPES,
                    },
                }
            )  # fmt: skip
            clients[alg] = (str(client.id), str(client.secret))
        # An agent on the same hot path (its tokens use the issuer's default, ES256).
        agent = await admin.issuer(issuer.id).agents.create({"name": "bench", "scopes": SCOPES})
        verifier = (
            await admin.issuer(issuer.id).agent(agent.id).verifiers.create({"type": "secret"})
        )
        clients[AGENT] = (str(agent.id), str(verifier.secret))
    tenant = Tenant(str(issuer.id), clients)
    async with httpx.AsyncClient(timeout=10) as http:
        await eventually(lambda: _jwks_ready(http, running.idp_url, tenant.issuer_id), 60.0)
    return tenant


async def _jwks_ready(http: httpx.AsyncClient, idp_url: str, issuer_id: str) -> bool:
    resp = await http.get(f"{idp_url}/{issuer_id}/jwks.json")
    return resp.status_code == 200 and len(resp.json()["keys"]) == 3


async def token_status(running: Running, tenant: Tenant, alg: str) -> int:
    """The token endpoint's answer for the client of `alg`, once the client is known (not 401/429)
    or the route is missing; a 200 is checked to be signed with `alg`."""
    client_id, secret = tenant.clients[alg]
    url = f"{running.idp_url}/{tenant.issuer_id}/token"
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=10) as http:
        while True:
            resp = await http.post(url, data=form)
            if resp.status_code not in (401, 429) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
    if resp.status_code == 200:
        import jwt

        header = jwt.get_unverified_header(resp.json()["access_token"])
        expected = "ES256" if alg == AGENT else alg
        if header["alg"] != expected:
            raise RuntimeError(f"the {alg} client got a {header['alg']} token")
    return resp.status_code


# --- wrk ---------------------------------------------------------------------------------------


def wrk_script(
    path: Path,
    method: str,
    body: str | None,
    delay_ms: float | None = None,
    headers: dict[str, str] | None = None,
) -> Path:
    lines = [f'wrk.method = "{method}"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in (headers or {}).items()]
    if delay_ms is not None:
        # Paced load: each connection waits this long after a response before the next request.
        lines.append(f"function delay() return {max(0, round(delay_ms))} end")
    if body is not None:
        lines += [
            f'wrk.body = "{body}"',
            'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"',
        ]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds a secret
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n" + DONE_LUA)
    return path


async def run_wrk(
    wrk: str, script: Path, url: str, *, threads: int, connections: int, seconds: float
) -> dict[str, Any]:
    threads = max(1, min(threads, connections))
    proc = await asyncio.create_subprocess_exec(
        wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency",
        "-s", str(script), url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    match = re.search(r"^WRKJSON (\{.*\})$", out.decode(), re.MULTILINE)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.decode()}{out.decode()}")
    raw = json.loads(match.group(1))
    elapsed = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    ok = raw["requests"] - raw["non_2xx"]
    return {
        "connections": connections,
        "threads": threads,
        "seconds": round(elapsed, 2),
        "requests": raw["requests"],
        "non_2xx": raw["non_2xx"],
        "socket_errors": errors,
        "ok_per_s": round(ok / elapsed, 1) if elapsed else 0.0,
        "requests_per_s": round(raw["requests"] / elapsed, 1) if elapsed else 0.0,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "mean_ms": round(raw["mean_us"] / 1000, 3),
    }


async def half_load(
    wrk: str,
    paced: Any,
    url: str,
    max_rate: float,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Half the measured maximum rate, held by pacing: a fixed number of connections, each
    waiting `delay` ms between a response and its next request (wrk's Lua `delay()`), tuned by
    short probes until the rate is within 5% of the target. wrk has no open-loop rate option, so
    this is the closest it gets to wrk2's constant throughput."""
    target = max_rate / 2
    connections = min(args.connections, 32)
    delay_ms = connections * 1000 / target
    probes: list[dict[str, float]] = []
    for _ in range(5):
        probe = await run_wrk(
            wrk, paced(delay_ms), url, threads=args.threads, connections=connections,
            seconds=args.probe_seconds,
        )  # fmt: skip
        rate = probe["requests_per_s"]
        probes.append({"delay_ms": round(delay_ms, 2), "requests_per_s": rate})
        if rate and abs(rate - target) / target <= 0.05:
            break
        if rate:
            delay_ms = max(0.0, delay_ms * rate / target)
    result = await run_wrk(
        wrk, paced(delay_ms), url, threads=args.threads, connections=connections,
        seconds=args.seconds,
    )  # fmt: skip
    result["delay_ms"] = round(delay_ms, 2)
    result["target_per_s"] = round(target, 1)
    result["fraction_of_max"] = round(result["requests_per_s"] / max_rate, 2) if max_rate else 0.0
    result["probes"] = probes
    return result


async def measure(args: argparse.Namespace, wrk: str) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="authpi-bench-tokens-"))
    try:
        async with platform_process(args.workers, work) as running:
            tenant = await set_up(running)
            statuses = {alg: await token_status(running, tenant, alg) for alg in SUBJECTS}
            token_ok = all(code == 200 for code in statuses.values())
            scenario = args.scenario
            if scenario == "auto":
                scenario = "token" if token_ok else "jwks"
            if scenario == "token" and not token_ok:
                raise RuntimeError(f"the token endpoint does not answer 200: {statuses}")
            runs: dict[str, Any] = {}
            targets: list[tuple[str, str, str | None, str]] = []
            if scenario == "token":
                url = f"{running.idp_url}/{tenant.issuer_id}/token"
                for alg in SUBJECTS:
                    client_id, secret = tenant.clients[alg]
                    body = (
                        "grant_type=client_credentials"
                        f"&client_id={quote_plus(client_id)}&client_secret={quote_plus(secret)}"
                    )
                    targets.append((alg, "POST", body, url))
            else:
                url = f"{running.idp_url}/{tenant.issuer_id}/jwks.json"
                targets.append(("jwks", "GET", None, url))
            for name, method, body, target_url in targets:
                script = wrk_script(work / f"{name}.lua", method, body)
                # Warm-up: connections, caches, the first lazy paths.
                await run_wrk(wrk, script, target_url, threads=1, connections=4, seconds=1)
                top = await run_wrk(
                    wrk, script, target_url, threads=args.threads,
                    connections=args.connections, seconds=args.seconds,
                )  # fmt: skip

                def paced(
                    delay_ms: float, name: str = name, method: str = method, body: str | None = body
                ) -> Path:
                    return wrk_script(work / f"{name}-paced.lua", method, body, delay_ms)

                half = await half_load(wrk, paced, target_url, top["requests_per_s"], args)
                (work / f"{name}-paced.lua").unlink(missing_ok=True)
                runs[name] = {"max": top, "half": half}
                script.unlink()
            endpoint = (
                "POST /{issuer_id}/token (client_credentials, client_secret_post)"
                if scenario == "token"
                else "GET /{issuer_id}/jwks.json"
            )
            return {
                "scenario": scenario,
                "endpoint": endpoint,
                "token_endpoint_status": statuses,
                "runs": runs,
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _print(results: dict[str, Any]) -> None:
    print(json.dumps(results, indent=2))
    floor = results["signing_floor"]
    print(f"\nIdP processes: {results['idp_workers']}   cores: {results['cpus']}")
    for alg, f in floor.items():
        print(f"signing floor {alg:6} {f['signs_per_s']:>8} signs/s (one core, in-process)")
    http = results.get("http")
    if not isinstance(http, dict):
        print(f"HTTP: {http}")
        return
    runs = cast(dict[str, dict[str, dict[str, Any]]], http["runs"])
    for name, run in runs.items():
        for kind in ("max", "half"):
            r = run[kind]
            print(
                f"{http['scenario']:5} {name:6} {kind:4} c={r['connections']:<3} "
                f"{r['ok_per_s']:>9.1f} 2xx/s  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms"
                f"  non-2xx {r['non_2xx']}  socket errors {r['socket_errors']}"
                + (f"  ({r['fraction_of_max']:.0%} of max)" if kind == "half" else "")
            )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="bench_tokens")
    parser.add_argument(
        "--workers", type=int, default=int(os.environ.get("AUTHPI_IDP_WORKERS") or 2),
        help="processes serving the IdP port (AUTHPI_IDP_WORKERS)",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0, help="per max and half run")
    parser.add_argument("--probe-seconds", type=float, default=2.0)
    parser.add_argument("--sign-seconds", type=float, default=4.0)
    parser.add_argument("--scenario", choices=["auto", "token", "jwks"], default="auto")
    parser.add_argument("--out", default="bench-results/tokens.json")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"idp_workers": args.workers, "cpus": os.cpu_count()}
    results["signing_floor"] = signing_floor(args.sign_seconds)
    wrk = shutil.which("wrk")
    if wrk is None:
        print(WRK_HINT, file=sys.stderr)
        results["http"] = f"skipped: {WRK_HINT}"
    else:
        results["http"] = uvloop.run(measure(args, wrk))
    _print(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
