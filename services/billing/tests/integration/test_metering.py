"""Metering exactly once (platform.md 5.5, DESIGN.md 3): 10,000 `machine.token.issued` facts,
published in batches, counted by the billing-metering consumer across a SIGKILL between its
commit and its ack and a restart, then closed into one usage entry per hour whose amounts sum to
exactly 10,000 x the rate; closing again, or a fact arriving for a closed hour, never charges an
hour twice."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid

import pytest

from authpi.billing.domain import ledger as ledger_decider
from authpi.billing.domain.rates import HOUR_MS, RateCard
from authpi.billing.handlers.ledger import Ledger, stream_of
from authpi.billing.handlers.metering import HourMoved, Metering, OpenHour
from authpi.billing.reactions.metering import MeteringReaction
from authpi.billing.service import MIGRATIONS
from authpi.config import Settings
from authpi.contracts.facts import FactBatch, MachineTokenIssued, encode_batch
from authpi.contracts.subjects import fact_subject
from authpi.crypto.clock import FixedClock
from authpi.crypto.envelope import Kek
from authpi.crypto.ids import RandomIds
from authpi.eventstore.migrations import migrate
from authpi.eventstore.sqltext import render
from authpi.messaging.facts import FactConsumer
from authpi.messaging.streams import ensure_streams, jetstream
from authpi.testing.plugin import eventually, running
from authpi.web.runtime import Runtime

RATE = 7
TOTAL = 10_000
PER_BATCH = 100
H0 = 1_780_000_000_000 - 1_780_000_000_000 % HOUR_MS  # an hour of 2026-05


def fact(account_id: str, at: int) -> MachineTokenIssued:
    return MachineTokenIssued(
        account_id=account_id, issuer_id="i_x", client_id="c_x", scope="a", aud="https://a.test",
        jti=uuid.uuid4().hex[:18], issued_at=at, expires_at=at + 300_000,
    )  # fmt: skip


async def publish(js, namespace: str, facts: list[MachineTokenIssued], batch_id: str) -> None:
    batch = FactBatch(batch_id=batch_id, facts=list(facts))
    await js.publish(
        fact_subject("machine.token.issued", namespace), encode_batch(batch),
        headers={"Nats-Msg-Id": batch_id},
    )  # fmt: skip


async def counted(pool, schema: str) -> int:
    query = render("SELECT coalesce(sum(count), 0) FROM {schema}.usage_hours", schema=schema)
    async with pool.connection() as conn:
        row = await (await conn.execute(query)).fetchone()
    return int(row[0]) if row else 0


def _env(infra, namespace: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(AUTHPI_DATABASE_URL=infra.dsn, AUTHPI_NATS_URL=infra.nats_url,
               AUTHPI_NAMESPACE=namespace)  # fmt: skip
    return env


@pytest.fixture
async def billing(infra, pool, nc, namespace, tmp_path):
    """The billing schema of a fresh namespace, and a runtime to write its ledger with."""
    schema = f"{namespace}_billing"
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        await migrate(conn, schema, MIGRATIONS)
    js = jetstream(nc)
    await ensure_streams(js, namespace)
    settings = Settings(data_dir=tmp_path, namespace=namespace)
    rt = Runtime(settings=settings, dsn=infra.dsn, pool=pool, nc=nc, js=js,
                 clock=FixedClock(H0 + 40 * 86_400_000), ids=RandomIds(),
                 kek=Kek(os.urandom(32)))  # fmt: skip
    return rt


async def test_ten_thousand_facts_charge_exactly_once_across_a_crash(infra, pool, billing):
    rt = billing
    schema, namespace, js = rt.schema("billing"), rt.namespace, rt.js
    account = f"acc_{uuid.uuid4().hex[:25]}"
    # Half in one hour, half in the next; each batch published twice (JetStream drops the copy).
    batches = [
        [fact(account, H0 + (HOUR_MS if b >= TOTAL // PER_BATCH // 2 else 0) + b) for _ in
         range(PER_BATCH)]
        for b in range(TOTAL // PER_BATCH)
    ]  # fmt: skip
    ids = [uuid.uuid4().hex for _ in batches]
    for batch, batch_id in zip(batches, ids, strict=True):
        await publish(js, namespace, batch, batch_id)
    await publish(js, namespace, batches[0], ids[0])  # a re-publish after a lost ack

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.billing.tests.crash_metering", "--schema", schema,
        "--namespace", namespace, "--crash-after", "3", "--batch", "10",
        env=_env(infra, namespace), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert await asyncio.wait_for(proc.wait(), 60) == -signal.SIGKILL
    at_crash = await counted(pool, schema)
    assert 0 < at_crash < TOTAL  # committed, never acked: redelivered after the restart

    consumer = FactConsumer(
        js=js,
        pool=pool,
        dsn=infra.dsn,
        projection=MeteringReaction(schema, rt.clock),
        namespace=namespace,
    )
    async with running(consumer):

        async def all_counted() -> bool:
            return await counted(pool, schema) >= TOTAL

        await eventually(all_counted, timeout=120)
    assert await counted(pool, schema) == TOTAL

    ledger = Ledger(rt)
    card = RateCard(version="test-1", rates={"machine_auth": RATE}, monthly_credit=0)
    metering = Metering(ledger, card, grace_s=0)
    closing = [metering.close_due(), metering.close_due()]  # two closers at once
    assert sum(await asyncio.gather(*closing)) == 2
    assert await metering.close_due() == 0

    async with pool.connection() as conn:
        rows = await ledger.queries.entries(conn, account, None, 100)
    assert [(r.type, r.dimension, r.count) for r in rows] == [
        ("usage", "machine_auth", TOTAL // 2), ("usage", "machine_auth", TOTAL // 2)
    ]  # fmt: skip
    assert sum(r.amount for r in rows) == -TOTAL * RATE
    assert {r.config_version for r in rows} == {"test-1"}
    state, _ = await ledger.store.read_state(stream_of(account), ledger_decider)
    assert state.balance == -TOTAL * RATE


async def test_a_closed_hour_is_never_charged_twice(pool, billing):
    rt = billing
    schema = rt.schema("billing")
    account = f"acc_{uuid.uuid4().hex[:25]}"
    reaction = MeteringReaction(schema, rt.clock)
    async with pool.connection() as conn, conn.transaction():
        await reaction.apply_facts(conn, [fact(account, H0 + 5) for _ in range(3)])
    ledger = Ledger(rt)
    metering = Metering(ledger, RateCard(version="v", rates={"machine_auth": 10}), grace_s=0)
    hour = OpenHour(account_id=account, dimension="machine_auth", hour=H0, count=3)
    await metering.close_hour(hour)
    with pytest.raises(HourMoved):  # already closed: a second entry is refused
        await metering.close_hour(hour)
    # A straggler of the closed hour counts in a later, open hour instead.
    async with pool.connection() as conn, conn.transaction():
        await reaction.apply_facts(conn, [fact(account, H0 + 9)])
    query = render(
        "SELECT hour, count, closed_entry_id IS NOT NULL FROM {schema}.usage_hours"
        " WHERE account_id = %s ORDER BY hour", schema=schema,
    )  # fmt: skip
    async with pool.connection() as conn:
        rows = await (await conn.execute(query, [account])).fetchall()
    assert rows[0] == (H0, 3, True)
    assert rows[1][1:] == (1, False) and rows[1][0] > H0
    entries = await _entries(ledger, account)
    grants = [e for e in entries if e.type == "grant"]
    usage = [e for e in entries if e.type == "usage"]
    assert len(usage) == 1 and usage[0].amount == -30 and len(grants) == 1  # the monthly credit
    assert usage[0].balance_after == 1_000_000 - 30


async def _entries(ledger: Ledger, account: str):
    async with ledger.rt.pool.connection() as conn:
        return await ledger.queries.entries(conn, account, None, 100)


async def test_a_lapsed_usage_credit_expires_on_an_idle_account(pool, billing):
    rt = billing
    ledger = Ledger(rt)
    account = f"acc_{uuid.uuid4().hex[:25]}"
    now = rt.clock.now_ms()
    grant = await ledger.grant(account, 700, "trial", expires_at=now - 1)
    metering = Metering(ledger, RateCard(version="v", rates={}), grace_s=0)
    assert await metering.expire_due() == 1
    assert await metering.expire_due() == 0  # swept already
    entries = await _entries(ledger, account)
    assert [(e.type, e.amount, e.related_entry_id) for e in entries] == [
        ("expiry", -700, grant), ("grant", 700, None)
    ]  # fmt: skip
    await ledger.expire_grants(account)  # nothing left to expire
    assert len(await _entries(ledger, account)) == 2
