"""Faults under load against the local distributed run (`authpi up --distributed`): a client loop
of token requests and Core API writes runs through each case, and each case ends with every
acknowledged write committed once, relayed to JetStream once, and applied by the token service's
consumer-fed projection. The figures (failed requests, times until replaced or taken over) are
printed, not asserted: speed belongs in `make bench`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid

import pytest
from psycopg import sql

from authpi.contracts.subjects import events_stream
from authpi.eventstore.locks import consumer_lock, relay_lock
from authpi.messaging import auth as nats_auth
from authpi.messaging.provenance import owned_types
from authpi.messaging.streams import connect, jetstream
from authpi.platform.testing.local_run import Load, lock_holder
from authpi.testing.plugin import eventually

# The first test starts the distributed run (a dozen processes and a NATS cluster).
pytestmark = [pytest.mark.distributed, pytest.mark.timeout(900)]


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
    """Every acknowledged write committed exactly once, applied by the token service's projection
    (fed by its consumer), and every event of the directory and the token service in JetStream
    exactly once."""
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
    auth = nats_auth.load(run.dir / "nats-auth" / "credentials-admin.json")
    nc = await connect(run.nats.url, auth=auth)
    try:
        for service in ("directory", "token"):
            await eventually(lambda s=service: _relayed_once(nc, dsn, ns, s), timeout=60)
    finally:
        await nc.close()


async def _relayed_once(nc, dsn: str, ns: str, service: str) -> bool:
    """The stream holds as many events of `service`'s types as its store: none lost, none
    published twice (a relay that took over publishes again from the last stored cursor; the
    stream drops what it already has by event id)."""
    stored = await _count(
        dsn, sql.SQL("SELECT count(*) FROM {}.events").format(sql.Identifier(f"{ns}_{service}")), []
    )
    info = await jetstream(nc).stream_info(events_stream(ns), subjects_filter=f"{ns}.evt.>")
    types = set(owned_types(service))
    subjects = info.state.subjects or {}
    relayed = sum(n for subject, n in subjects.items() if _type_of(subject, ns) in types)
    return relayed == stored


def _type_of(subject: str, ns: str) -> str:
    """`<ns>.evt.<account>.<type>`: the type may hold dots itself."""
    return subject.removeprefix(f"{ns}.evt.").split(".", 1)[-1]


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
    """The token service's relay (two token replicas: one holds it, the other stands by), with
    writes of the token service's own events throughout: each new issuer gets signing keys."""
    run, platform = topology
    key = relay_lock(f"{platform.namespace}_token")
    load = Load(platform, tenant[0], tenant[1])
    stop = asyncio.Event()
    async with load.running():
        issuers = asyncio.create_task(_new_issuers(platform, stop))
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
        stop.set()
        made = await issuers
    _report("relay holder SIGKILL", load, holder=holder, successor=successor,
            takeover_s=round(took, 2), issuers=made)  # fmt: skip
    await settled(run, platform, load)


async def _new_issuers(platform, stop: asyncio.Event) -> int:
    """Issuers created one after another until `stop`; each makes the token service write."""
    from authpi_admin import AuthPIAdmin

    admin = AuthPIAdmin(
        api_key=(platform.api_key_id, platform.api_key_secret), account_id=platform.account_id,
        base_url=platform.api_url, retries=True,
    )  # fmt: skip
    made = 0
    try:
        while not stop.is_set():
            with contextlib.suppress(Exception):  # a refused write makes no event
                await admin.issuers.create({"name": f"relay-{uuid.uuid4().hex[:6]}"})
                made += 1
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    return made


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
