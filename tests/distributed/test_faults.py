"""Faults under load against the local distributed run (`authpi up --distributed`): a client loop
of token requests and Core API writes runs through each case, and each case ends with every
acknowledged write committed once, relayed to JetStream once, and applied by the token service's
consumer-fed projection. The figures (failed requests, times until replaced or taken over) are
printed, not asserted: speed belongs in `make bench`."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid

import pytest
from psycopg import sql

from authpi.contracts.subjects import events_stream, subject_for
from authpi.eventstore.locks import consumer_lock, relay_lock
from authpi.messaging import auth as nats_auth
from authpi.messaging.streams import connect, jetstream
from authpi.platform.testing.local_run import Load, lock_holder
from authpi.testing.plugin import eventually

pytestmark = pytest.mark.distributed


@pytest.fixture(scope="module")
async def topology(local_run):
    """The session's distributed run (the SDK suites marked `sdk` share it)."""
    return await local_run.get()


@pytest.fixture(scope="module")
async def tenant(topology):
    """An issuer and an m2m client the token replicas already know."""
    from authpi_admin import AuthPIAdmin

    _, platform = topology
    admin = AuthPIAdmin(
        api_key=(platform.api_key_id, platform.api_key_secret), account_id=platform.account_id,
        base_url=platform.api_url, retries=False,
    )  # fmt: skip
    issuer = await admin.issuers.create({"name": f"faults-{uuid.uuid4().hex[:6]}"})
    client = await admin.issuer(issuer.id).clients.create(
        {"name": "load", "type": "m2m", "settings": {"scopes": ["a:b"]}}
    )
    await admin.close()
    load = Load(platform, issuer.id, (client.id, client.secret))
    async with load.running():
        await load.progress(tokens=20, writes=1)  # both replicas know the client
    return issuer.id, (client.id, client.secret)


def _report(case: str, load: Load, **figures: object) -> None:
    """The case's figures: the load's (token requests that failed, write attempts tried again,
    writes left in doubt) and the case's own."""
    figures = {
        "tokens": load.tokens_ok, "failed_token_requests": load.token_failures,
        "writes": len(load.acknowledged), "write_retries": load.write_failures,
        "in_doubt": load.in_doubt, **figures,
    }  # fmt: skip
    print(f"\n[{case}] " + ", ".join(f"{k}={v}" for k, v in figures.items()), flush=True)


async def _count(dsn: str, query: sql.Composable, params: list[object]) -> int:
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        row = await (await conn.execute(query, params)).fetchone()
    return int(row[0]) if row else 0


async def settled(run, platform, load: Load) -> None:
    """Every acknowledged write committed exactly once, in JetStream exactly once per committed
    event, and applied by the token service's projection (fed by its consumer)."""
    ids = list(dict.fromkeys(load.acknowledged))
    assert len(ids) == len(load.acknowledged), "an acknowledged write was answered twice"
    ns, dsn = platform.namespace, run.owner_dsn
    directory, token = sql.Identifier(f"{ns}_directory"), sql.Identifier(f"{ns}_token")
    created = await _count(
        dsn,
        sql.SQL("SELECT count(*) FROM {}.events WHERE type = 'user.created'"
                " AND stream_id = ANY(%s)").format(directory),
        [ids],
    )  # fmt: skip
    assert created == len(ids)  # every acknowledged write committed, once
    in_view = sql.SQL("SELECT count(*) FROM {}.users_view WHERE id = ANY(%s)")

    async def projected() -> bool:
        return await _count(dsn, in_view.format(token), [ids]) == len(ids)

    await eventually(projected, timeout=60)
    total = await _count(
        dsn, sql.SQL("SELECT count(*) FROM {}.events WHERE type = 'user.created'").format(
            directory), [])  # fmt: skip
    auth = nats_auth.load(run.dir / "nats-auth" / "credentials-admin.json")
    nc = await connect(run.nats.url, auth=auth)
    try:
        subject = subject_for(platform.account_id, "user.created", ns).replace(
            platform.account_id, "*"
        )

        async def relayed() -> int:
            info = await jetstream(nc).stream_info(events_stream(ns), subjects_filter=subject)
            return sum((info.state.subjects or {}).values())

        await eventually(lambda: _equal(relayed(), total), timeout=60)
    finally:
        await nc.close()


async def _equal(value, expected: int) -> bool:
    return await value == expected


@pytest.mark.quick
async def test_token_replica_killed_other_keeps_serving_and_it_is_replaced(topology, tenant):
    run, platform = topology
    load = Load(platform, tenant[0], tenant[1])
    child = run.children["token-1"]
    restarts = len(child.restarts)
    async with load.running():
        await load.progress()
        killed = time.monotonic()
        os.kill(child.pid, signal.SIGKILL)
        await load.progress(tokens=200, writes=10)
        await eventually(lambda: _true(len(child.restarts) > restarts), timeout=180)
        await load.progress(tokens=50, writes=5)
    _report(
        "token replica SIGKILL",
        load,
        exit_seen_after_s=round(child.exited_at - killed, 2),
        up_again_after_s=round(child.exited_at - killed + child.restarts[-1], 1),
    )
    await settled(run, platform, load)


async def _true(value: bool) -> bool:
    return value


async def test_relay_holder_killed_another_takes_over(topology, tenant):
    run, platform = topology
    key = relay_lock(f"{platform.namespace}_directory")
    load = Load(platform, tenant[0], tenant[1])
    async with load.running():
        await load.progress()
        holder = await lock_holder(run.owner_dsn, key)
        assert holder in run.children
        killed = time.monotonic()
        os.kill(run.children[holder].pid, signal.SIGKILL)

        async def taken_over() -> str | None:
            now = await lock_holder(run.owner_dsn, key)
            return now if now not in (None, holder) else None

        successor = await eventually(taken_over, timeout=30, interval=0.02)
        took = time.monotonic() - killed
        await load.progress(tokens=50, writes=10)
    _report("relay holder SIGKILL", load, holder=holder, successor=successor,
            takeover_s=round(took, 2))  # fmt: skip
    await settled(run, platform, load)


async def test_nats_node_killed_no_event_lost_and_it_rejoins(topology, tenant):
    run, platform = topology
    load = Load(platform, tenant[0], tenant[1])
    async with load.running():
        await load.progress()
        run.nats.kill(0)
        await load.progress(tokens=100, writes=10)
        await asyncio.to_thread(run.nats.restart, 0)
        await load.progress(tokens=50, writes=5)
    _report("NATS node SIGKILL", load)
    await settled(run, platform, load)


async def test_postgres_restart_services_reconnect(topology, tenant):
    run, platform = topology
    load = Load(platform, tenant[0], tenant[1])
    async with load.running():
        await load.progress()
        await run.restart_postgres()
        await load.progress(tokens=50, writes=10, timeout=180)
    _report("PostgreSQL restart", load)
    await settled(run, platform, load)


async def test_stopped_service_process_catches_up(topology, tenant):
    run, platform = topology
    key = consumer_lock(f"{platform.namespace}_token", "token-users")
    load = Load(platform, tenant[0], tenant[1])
    async with load.running():
        await load.progress()
        holder = await lock_holder(run.owner_dsn, key)
        assert holder in run.children
        pid = run.children[holder].pid
        os.kill(pid, signal.SIGSTOP)
        try:
            await load.progress(tokens=50, writes=10, timeout=180)
        finally:
            os.kill(pid, signal.SIGCONT)
        await load.progress(tokens=20, writes=5)
    _report("SIGSTOP/SIGCONT", load, stopped=holder)
    await settled(run, platform, load)
