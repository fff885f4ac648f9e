"""`make bench`: the cost of one user password verification (Argon2id) at this deployment's
parameters (AUTHPI_ARGON2_*; OWASP minimum by default), on this machine. The plan's budget is one
verification under 300 ms of CPU; the figures say where a deployment stands. Latency p50/p99 of
one verification at a time (wall and CPU), and verifications/s with the portal's bounded
concurrency."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from authpi.config import from_env
from authpi.crypto.passwords import Passwords


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def main(rounds: int = 40, seconds: float = 5.0) -> dict[str, float | int]:
    s = from_env()
    passwords = Passwords(
        memory_kib=s.argon2_memory_kib, time_cost=s.argon2_time_cost,
        parallelism=s.argon2_parallelism,
    )  # fmt: skip
    stored = passwords.hash_now("correct horse battery staple")
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(rounds):
        w, c = time.perf_counter(), time.process_time()
        assert passwords.verify_now(stored, "correct horse battery staple")
        cpu.append((time.process_time() - c) * 1000)
        wall.append((time.perf_counter() - w) * 1000)
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await passwords.verify(stored, "correct horse battery staple")
            done += 1

    await asyncio.gather(*(worker() for _ in range(16)))
    return {
        "argon2_memory_kib": s.argon2_memory_kib,
        "argon2_time_cost": s.argon2_time_cost,
        "argon2_parallelism": s.argon2_parallelism,
        "verify_wall_ms_p50": round(pct(wall, 0.5), 1),
        "verify_wall_ms_p99": round(pct(wall, 0.99), 1),
        "verify_cpu_ms_p50": round(pct(cpu, 0.5), 1),
        "verify_cpu_ms_p99": round(pct(cpu, 0.99), 1),
        "verifications_per_s": round(done / seconds, 1),
    }


def cli() -> None:
    results = asyncio.run(main())
    print(json.dumps(results, indent=2))
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "passwords.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    cli()
