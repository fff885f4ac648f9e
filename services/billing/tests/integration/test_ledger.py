"""The credit ledger on the running platform (platform.md 5.4, 5.10): concurrent top-ups, a
payment credited several times at once, adjustments and usage all land, and the balance never
drifts: recomputed from the stream's events it equals every entry's `balance_after`, the balance
view and the account's `balance_μusd`; `account.credits.updated` follows every change but usage,
and `account.credits.depleted` each crossing to <= 0."""

from __future__ import annotations

import asyncio
import os
import uuid

from authpi.billing.domain.rates import HOUR_MS
from authpi.billing.handlers.ledger import stream_of
from authpi.contracts.billing import MU, Settlement
from authpi.contracts.facts import FactBatch, MachineTokenIssued, encode_batch
from authpi.contracts.subjects import fact_subject
from authpi.testing.plugin import eventually

NETWORK = "eip155:84532"


def settlement(value: int, nonce: str | None = None) -> Settlement:
    return Settlement(
        network=NETWORK, asset="0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        payer="0x857b06519E91e3A54538791bDbb0E22373e36b66",
        pay_to="0x209693Bc6afc0C5328bA36FaF03C514EF312287C", value=value,
        nonce=nonce or "0x" + os.urandom(32).hex(), tx_hash="0x" + os.urandom(32).hex(),
        settled_at=0,
    )  # fmt: skip


async def publish_usage(platform, account_id: str, count: int, at: int) -> None:
    facts = [
        MachineTokenIssued(
            account_id=account_id, issuer_id="i_x", client_id="c_x", scope="a",
            aud="https://a.test", jti=uuid.uuid4().hex[:18], issued_at=at, expires_at=at + 1,
        )
        for _ in range(count)
    ]  # fmt: skip
    batch = FactBatch(batch_id=uuid.uuid4().hex, facts=list(facts))
    await platform.handle.rt.js.publish(
        fact_subject("machine.token.issued", platform.namespace), encode_batch(batch),
        headers={"Nats-Msg-Id": batch.batch_id},
    )  # fmt: skip


async def test_concurrent_topups_and_usage_never_drift(platform, pool, kit):
    tenant = await kit.new_tenant(platform)
    account = tenant.account_id
    ledger = kit.ledger_of(platform)
    metering = kit.part(platform, "metering")
    # Usage of an hour long past, counted by the platform's own metering consumer.
    past = platform.handle.rt.clock.now_ms() - 5 * HOUR_MS
    await publish_usage(platform, account, 40, past)

    async def usage_counted() -> bool:
        return any(r.dimension == "machine_auth" for r in await open_hours(ledger, account))

    await eventually(usage_counted)
    same = settlement(250_000)
    topups = [ledger.record_topup(account, settlement(10_000 + i), method_id=None)
              for i in range(20)]  # fmt: skip
    duplicates = [ledger.record_topup(account, same, method_id=None) for _ in range(6)]
    debits = [ledger.adjust(account, -3_000 - i, "correction") for i in range(10)]
    closing = [metering.close_due() for _ in range(3)]
    results = await asyncio.gather(*topups, *duplicates, *debits, *closing)
    dup_results = results[20:26]
    assert sorted(r.duplicate for r in dup_results) == [False] + [True] * 5
    assert len({r.entry_id for r in dup_results}) == 1

    events = await kit.stored_events(platform, pool, stream_of(account))
    entries = [d for t, d in events if t == "credit-ledger.entry-recorded"]
    running = 0
    for entry in entries:
        running += entry[f"amount_{MU}usd"]
        assert entry[f"balance_after_{MU}usd"] == running
    expected = sum(10_000 + i for i in range(20)) + 250_000 - sum(3_000 + i for i in range(10))
    usage = [e for e in entries if e["entry_type"] == "usage"]
    assert [u["count"] for u in usage] == [40]
    grants = sum(e[f"amount_{MU}usd"] for e in entries if e["entry_type"] == "grant")
    assert running == expected + grants - 40 * 50
    updated = [d for t, d in events if t == "account.credits.updated"]
    assert len(updated) == len(entries) - len(usage)
    assert [u[f"balance_{MU}usd"] for u in updated] == [
        e[f"balance_after_{MU}usd"] for e in entries if e["entry_type"] != "usage"
    ]

    async with pool.connection() as conn:
        assert await ledger.queries.balance(conn, account) == running
    listed = [e async for e in tenant.credits.ledger_all(limit=7)]
    assert sum(e.amount_μusd for e in listed) == running
    assert listed[0].balance_after_μusd == running

    async def account_shows_it():
        got = await tenant.admin.accounts.get(account)
        return got if got.balance_μusd == running else None

    shown = await eventually(account_shows_it)
    assert shown.credits_run_out is False


async def test_crossing_to_zero_is_depleted_once_per_crossing(platform, pool, kit):
    tenant = await kit.new_tenant(platform)
    ledger = kit.ledger_of(platform)
    account = tenant.account_id
    await ledger.record_topup(account, settlement(1_000), method_id=None)
    await ledger.adjust(account, -600, "correction")
    await ledger.adjust(account, -600, "correction")  # crosses: 400 -> -200
    await ledger.adjust(account, -1, "correction")  # stays below: nothing more
    await ledger.record_topup(account, settlement(1_000), method_id=None)  # back above
    await ledger.adjust(account, -799, "correction")  # crosses again: 799 -> 0
    events = await kit.stored_events(platform, pool, stream_of(account))
    depleted = [d for t, d in events if t == "account.credits.depleted"]
    assert [d[f"balance_{MU}usd"] for d in depleted] == [-200, 0]
    assert {d["billing_mode"] for d in depleted} == {"ungated"}

    async def run_out():
        got = await tenant.admin.accounts.get(account)
        return got if got.balance_μusd == 0 else None

    assert (await eventually(run_out)).credits_run_out is True


async def open_hours(ledger, account: str):
    async with ledger.rt.pool.connection() as conn:
        return await ledger.queries.open_usage(conn, account, 0, 2**62)
