"""The metering benchmark (part of `make bench`): the token endpoint's throughput with billing
metering on and off (platform.md 5.5; the target is an overhead under 5%). Each mode runs its
own `authpi up` (AUTHPI_BILLING_METERING=on|off) with one IdP process; the load is
client_credentials token requests from keep-alive connections of the small asyncio generator
(tests/bench/loadgen.py), in windows alternating between the two platforms, both up at once so
that each window sees the same machine. With metering on, the billing-metering consumer counts
every issued token into usage hours; the token endpoint itself only adds each fact to memory in
either mode (its facts also feed the verifiers' usage counts)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlsplit

import uvloop

from authpi.platform.testing.process import Running, platform_process
from authpi.testing.infra import start_infra
from tests.bench.bench_tokens import set_up, token_status
from tests.bench.loadgen import close_all, open_all, request

ALG = "ES256"


async def window(running: Running, form: bytes, issuer_id: str, conns: int, seconds: float):
    url = urlsplit(running.idp_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    data = request("POST", f"{host}:{port}", f"/{issuer_id}/token", form=form)
    pool = await open_all(host, port, conns)
    ok = failed = 0
    deadline = time.monotonic() + seconds

    async def loop(conn) -> None:
        nonlocal ok, failed
        while time.monotonic() < deadline:
            response = await conn.send(data)
            if response.status == 200:
                ok += 1
            else:
                failed += 1

    started = time.monotonic()
    await asyncio.gather(*(loop(c) for c in pool))
    elapsed = time.monotonic() - started
    await close_all(pool)
    return ok / elapsed, failed


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    infra = start_infra()
    results: dict[str, list[float]] = {"off": [], "on": []}
    try:
        with tempfile.TemporaryDirectory() as off_dir, tempfile.TemporaryDirectory() as on_dir:
            async with contextlib.AsyncExitStack() as stack:
                platforms: dict[str, tuple[Running, bytes, str]] = {}
                for mode, folder in (("off", off_dir), ("on", on_dir)):
                    running = await stack.enter_async_context(
                        platform_process(1, Path(folder), infra, {"AUTHPI_BILLING_METERING": mode})
                    )
                    tenant = await set_up(running)
                    status = await token_status(running, tenant, ALG)
                    if status != 200:
                        raise RuntimeError(f"the token endpoint answers {status}")
                    client_id, secret = tenant.clients[ALG]
                    form = (f"grant_type=client_credentials&client_id={quote_plus(client_id)}"
                            f"&client_secret={quote_plus(secret)}").encode()  # fmt: skip
                    platforms[mode] = (running, form, tenant.issuer_id)
                for running, form, issuer in platforms.values():  # warm both up
                    await window(running, form, issuer, args.connections, 2.0)
                for _ in range(args.rounds):
                    for mode in ("off", "on"):
                        running, form, issuer = platforms[mode]
                        rate, failed = await window(
                            running, form, issuer, args.connections, args.seconds
                        )
                        if failed:
                            raise RuntimeError(f"{failed} token requests failed ({mode})")
                        results[mode].append(rate)
    finally:
        infra.close()
    off = sum(results["off"]) / len(results["off"])
    on = sum(results["on"]) / len(results["on"])
    return {
        "tokens_per_s_metering_off": round(off, 1),
        "tokens_per_s_metering_on": round(on, 1),
        "overhead_pct": round(100 * (off - on) / off, 2),
        "windows": results,
        "connections": args.connections,
        "seconds_per_window": args.seconds,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    results = uvloop.run(measure(args))
    print("metering overhead on the token endpoint (client_credentials, ES256, 1 IdP process)")
    print(f"  metering off: {results['tokens_per_s_metering_off']:>9.1f} tokens/s")
    print(f"  metering on:  {results['tokens_per_s_metering_on']:>9.1f} tokens/s")
    print(f"  overhead:     {results['overhead_pct']:>9.2f} % (target < 5 %)")
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "metering.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
