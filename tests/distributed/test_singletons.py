"""Singleton work with replicas, against the local distributed run (`authpi up --distributed`):
two gateway and two token replicas, and here a second replica of the directory, webhook, billing
and agent services (`authpi serve <service>`, as a Deployment scaled to two). Every singleton task
(ServiceParts.tasks), relay and audit-log tailer of each service is held by exactly one of its
replicas (its session advisory lock, in pg_locks), and when that replica is killed another one
takes its work over while the dead one is started again."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import psycopg
import pytest

from authpi.config import Settings
from authpi.eventstore.locks import relay_lock, task_lock
from authpi.platform.modules import all_modules
from authpi.platform.serving import offline_runtime
from authpi.testing.plugin import eventually
from authpi.webhook.delivery.fanout import FanOut
from authpi.webhook.public.relay import PublicStreamRelay

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(900)]

SCALED = ("directory", "webhook", "billing", "agent")  # one process each in the run: one more


@pytest.fixture(scope="module")
async def topology(local_run):
    """The session's distributed run with a second replica of each service that has only one;
    scaled back down afterwards."""
    run, platform = await local_run.get()
    added = [(await run.add_replica(service)).spec.name for service in SCALED]
    try:
        yield run, platform
    finally:
        for name in added:
            await run.remove_replica(name)


async def singleton_locks(namespace: str) -> dict[str, list[str]]:
    """Each service's locks of one-copy work: its relay, its singleton tasks (as its `build`
    declares them) and, for the webhook service, its audit-log tailers and dispatcher."""
    offline = offline_runtime(Settings(data_dir=Path("/nonexistent"), namespace=namespace))
    locks: dict[str, list[str]] = {}
    for module in all_modules():
        schema = f"{namespace}_{module.name}"
        parts = await module.build(offline)
        locks[module.name] = [relay_lock(schema)] + [task_lock(schema, n) for n, _ in parts.tasks]
    webhook = f"{namespace}_webhook"
    locks["webhook"] += [f"authpi.tailer:{webhook}:{t.name}" for t in (PublicStreamRelay, FanOut)]
    locks["webhook"].append(f"authpi.dispatcher:{webhook}")
    return locks


async def holders(dsn: str, key: str) -> list[str]:
    """Every process (application name) whose session holds advisory lock `key`."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
            " AND l.objid::bigint = (hashtext(%s)::bigint & 4294967295)",
            [key],
        )
        return [row[0].removeprefix("authpi-") for row in await cur.fetchall()]


async def held_once(run, dsn: str, service: str, key: str) -> str | None:
    """The one replica of `service` holding `key`, once exactly one does."""
    now = await holders(dsn, key)
    return now[0] if len(now) == 1 and now[0] in run.replicas(service) else None


async def test_every_singleton_runs_in_exactly_one_replica(topology):
    run, platform = topology
    locks = await singleton_locks(platform.namespace)
    assert "token:key-rotation" in " ".join(locks["token"])
    assert "token:key-maker" not in " ".join(locks["token"])  # every replica makes keys
    seen: dict[str, str] = {}
    for service, keys in locks.items():
        assert len(run.replicas(service)) >= 2, service
        for key in keys:
            seen[key] = await eventually(
                lambda s=service, k=key: held_once(run, run.owner_dsn, s, k), timeout=60
            )
    print("\n" + "\n".join(f"{k} -> {v}" for k, v in sorted(seen.items())), flush=True)


async def test_singleton_holders_killed_other_replicas_take_over(topology):
    """One holder of each service is killed at once (SIGKILL: no goodbye, its sessions end when
    PostgreSQL sees the socket close); every lock it held passes to another replica."""
    run, platform = topology
    dsn = run.owner_dsn
    locks = await singleton_locks(platform.namespace)
    victims: dict[str, tuple[str, list[str]]] = {}  # service -> (process killed, its locks)
    for service, keys in locks.items():
        now = {
            k: await eventually(lambda s=service, k=k: held_once(run, dsn, s, k), timeout=60)
            for k in keys
        }
        victim = now[keys[0]]
        victims[service] = (victim, [k for k, holder in now.items() if holder == victim])
    restarts = {victim: len(run.children[victim].restarts) for victim, _ in victims.values()}
    for victim, _ in victims.values():
        os.kill(run.children[victim].pid, signal.SIGKILL)

    async def taken_over(service: str, victim: str, key: str) -> str | None:
        now = await held_once(run, dsn, service, key)
        return now if now not in (None, victim) else None

    successors = await asyncio.gather(
        *(
            eventually(lambda s=s, v=v, k=k: taken_over(s, v, k), timeout=60, interval=0.05)
            for s, (v, keys) in victims.items()
            for k in keys
        )
    )
    assert all(successors)
    # The killed replicas come back (the run restarts them) and stand by.
    for victim, count in restarts.items():
        child = run.children[victim]
        await eventually(lambda c=child, n=count: _true(len(c.restarts) > n), timeout=300)
    for service, keys in locks.items():
        for key in keys:
            await eventually(lambda s=service, k=key: held_once(run, dsn, s, k), timeout=60)
    print("\n" + ", ".join(f"{s}: {v} killed" for s, (v, _) in victims.items()), flush=True)


async def _true(value: bool) -> bool:
    return value
