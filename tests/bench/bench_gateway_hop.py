"""The cost of the gateway hop in the distributed topology (part of `make bench`): p50/p99 of one
Core API read, `GET A/issuers`, sent one at a time (a) to the gateway (`authpi serve gateway`:
authentication, rate limit, forwarding to the directory with the principal signed) and (b)
straight to the directory's internal listener (`authpi serve directory`) with a signature made
by this client, which holds the KEK. (a) - (b) is what the hop adds. Every server is its own
process (authpi.platform.testing.distributed); the client is this one.

The same direct request is also timed with httpx and with aiohttp as the client, which is the
choice the gateway's forwarder made (gateway.edge.forward)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx
import uvloop

from authpi.crypto.clock import SystemClock
from authpi.crypto.envelope import Kek
from authpi.observability import configure_logging
from authpi.platform.testing.distributed import Distributed, distributed
from authpi.testing.infra import start_infra
from authpi.web.edge import EdgeSigner, keys_of
from authpi.web.principal import Principal
from tests.bench.bench import pct

Send = Callable[[], Awaitable[int]]


def direct_headers(run: Distributed, signer: EdgeSigner, path: str) -> dict[str, str]:
    request_id = f"req_bench_{time.time_ns()}"
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode()}
    principal = Principal(
        type="api_key", account_id=run.account_id, org_id="", key_id=run.api_key_id,
        scopes=frozenset({"issuers:read"}),
    )  # fmt: skip
    pairs = signer.headers(scope, request_id, b"", principal)  # type: ignore[arg-type]
    return {**dict(pairs), "x-request-id": request_id}


async def timed(send: Send, requests: int) -> dict[str, float]:
    for _ in range(min(200, requests)):  # warm the pools and caches
        assert await send() == 200
    samples: list[float] = []
    for _ in range(requests):
        started = time.perf_counter()
        status = await send()
        samples.append((time.perf_counter() - started) * 1000)
        assert status == 200, status
    samples.sort()
    return {"p50_ms": round(pct(samples, 0.5), 3), "p99_ms": round(pct(samples, 0.99), 3)}


async def measure(run: Distributed, requests: int) -> dict[str, dict[str, float]]:
    path = f"/v1/accounts/{run.account_id}/issuers"
    signer = EdgeSigner(keys_of(Kek.from_text(run.kek)), SystemClock())
    basic = base64.b64encode(f"{run.api_key_id}:{run.api_key_secret}".encode()).decode()
    auth = {"Authorization": f"Basic {basic}"}
    direct = run.internal["directory"]
    async with aiohttp.ClientSession() as session, httpx.AsyncClient() as client:

        async def via_gateway() -> int:
            async with session.get(f"{run.api_url}{path}", headers=auth) as response:
                await response.read()
                return response.status

        async def straight() -> int:
            headers = direct_headers(run, signer, path)
            async with session.get(f"{direct}{path}", headers=headers) as response:
                await response.read()
                return response.status

        async def straight_httpx() -> int:
            headers = direct_headers(run, signer, path)
            return (await client.get(f"{direct}{path}", headers=headers)).status_code

        results = {
            "gateway": await timed(via_gateway, requests),
            "direct": await timed(straight, requests),
            "direct_httpx_client": await timed(straight_httpx, requests),
        }
    results["hop"] = {
        k: round(results["gateway"][k] - results["direct"][k], 3) for k in ("p50_ms", "p99_ms")
    }
    return results


async def main(requests: int) -> dict[str, dict[str, float]]:
    infra = await asyncio.to_thread(start_infra)
    try:
        with tempfile.TemporaryDirectory(prefix="authpi-hop-") as tmp:
            # One client address sends every request: no rate limit in the way.
            unlimited = {"AUTHPI_RATE_LIMIT_MULTIPLIER": "1000"}
            async with distributed(infra, Path(tmp), unlimited) as run:
                return await measure(run, requests)
    finally:
        await asyncio.to_thread(infra.close)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    configure_logging("console", "warning")
    results = uvloop.run(main(args.requests))
    print(json.dumps({"gateway_hop": results}, indent=2))
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "gateway_hop.json").write_text(json.dumps(results, indent=2) + "\n")
