"""x402 top-ups against a real Anvil and PostgreSQL (platform.md 5.6-5.8): a good payment is
verified, settled on chain and credited once; every attack is refused with its spec reason and
credits nothing; two concurrent retries with one payment credit once; a payment settled by a
process that died before the ledger write is found again on chain by its nonce and credited."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from psycopg_pool import AsyncConnectionPool

from authpi.billing.x402.chain import Chain
from authpi.billing.x402.payments import Payments
from authpi.billing.x402.wire import (
    V1_RESPONSE,
    V2_RESPONSE,
    Requirement,
    decode_header,
    read_payment,
)
from authpi.embedded.anvil import DEV_KEYS
from services.billing.tests.x402kit import ChainKit, Method, header, make_payments, sign

ACCOUNT = "acc_x402test"
URL = "http://127.0.0.1/v1/accounts/acc_x402test/issuers"


async def requirement(payments: Payments) -> Requirement:
    req, _ = await payments.requirement(ACCOUNT, URL)
    return req


async def balance(kit: ChainKit, address: str) -> int:
    chain = Chain(kit.url)
    try:
        return await chain.balance_of(kit.token, address)
    finally:
        await chain.aclose()


async def test_challenge_has_both_versions(
    pool: AsyncConnectionPool, billing_schema: str, chain_kit: ChainKit
) -> None:
    payments, _ = make_payments(
        pool, billing_schema, chain_kit, method=Method(topup_amount=2_000_000)
    )
    challenge = await payments.challenge(ACCOUNT, URL)
    v2 = decode_header(challenge.header_v2)
    assert v2["x402Version"] == 2 and v2["resource"]["url"] == URL
    assert v2["accepts"][0] == {
        "scheme": "exact", "network": "eip155:31337", "amount": "2000000",
        "asset": chain_kit.token, "payTo": chain_kit.treasury, "maxTimeoutSeconds": 300,
        "extra": {"name": "USD Coin", "version": "2"},
    }  # fmt: skip
    v1 = challenge.body_v1["accepts"][0]
    assert challenge.body_v1["x402Version"] == 1
    assert (v1["maxAmountRequired"], v1["resource"], v1["payTo"]) == (
        "2000000",
        URL,
        chain_kit.treasury,
    )


async def test_pay_settles_on_chain_and_credits_once(
    pool: AsyncConnectionPool, billing_schema: str, chain_kit: ChainKit
) -> None:
    payments, ledger = make_payments(pool, billing_schema, chain_kit)
    wallet = await chain_kit.funded_wallet(3_000_000)
    req = await requirement(payments)
    treasury_before = await balance(chain_kit, chain_kit.treasury)
    for version in (2, 1):
        document = sign(wallet, req, version=version)
        outcome = await payments.pay(ACCOUNT, header(document), URL)
        assert outcome.ok and outcome.topup is not None and not outcome.topup.duplicate
        name, value = outcome.response_header or ("", "")
        assert name == (V2_RESPONSE if version == 2 else V1_RESPONSE)
        response = decode_header(value)
        assert response["success"] is True and response["payer"] == wallet.address
        assert len(response["transaction"]) == 66
        # Replaying the same payment is refused and credits nothing.
        again = await payments.pay(ACCOUNT, header(document), URL)
        assert not again.ok and again.error.reason == "invalid_transaction_state"
        assert again.error.status == 402
    assert ledger.balances[ACCOUNT] == 2_000_000
    assert await balance(chain_kit, wallet.address) == 1_000_000
    assert await balance(chain_kit, chain_kit.treasury) == treasury_before + 2_000_000


async def refused(payments: Payments, document: dict[str, Any]) -> str:
    outcome = await payments.pay(ACCOUNT, header(document), URL)
    assert not outcome.ok and outcome.topup is None
    assert outcome.response_header is not None
    assert decode_header(outcome.response_header[1])["success"] is False
    return str(outcome.error.reason)


async def test_attacks_are_refused_with_their_reason_and_credit_nothing(
    pool: AsyncConnectionPool, billing_schema: str, chain_kit: ChainKit
) -> None:
    payments, ledger = make_payments(pool, billing_schema, chain_kit)
    wallet = await chain_kit.funded_wallet(5_000_000)
    req = await requirement(payments)
    now = int(time.time())
    other = "0x" + "12" * 20
    assert await refused(payments, sign(wallet, req, to=other)) == (
        "invalid_exact_evm_payload_recipient_mismatch"
    )
    assert await refused(payments, sign(wallet, req, value="999999")) == (
        "invalid_exact_evm_payload_authorization_value"
    )
    wrong_asset = {**sign(wallet, req), "accepted": {**req.v2(), "asset": other}}
    assert await refused(payments, wrong_asset) == "invalid_payment_requirements"
    wrong_network = {**sign(wallet, req), "accepted": {**req.v2(), "network": "eip155:8453"}}
    assert await refused(payments, wrong_network) == "invalid_network"
    assert await refused(payments, sign(wallet, req, validBefore=str(now - 10))) == (
        "invalid_exact_evm_payload_authorization_valid_before"
    )
    assert await refused(payments, sign(wallet, req, validBefore=str(now + 3600))) == (
        "invalid_exact_evm_payload_authorization_valid_before"
    )
    assert await refused(payments, sign(wallet, req, domain_name="USDC")) == (
        "invalid_exact_evm_payload_signature"
    )
    poor = await chain_kit.funded_wallet(999_999)
    assert await refused(payments, sign(poor, req)) == "insufficient_funds"
    restricted, _ = make_payments(
        pool, billing_schema, chain_kit, ledger=ledger,
        method=Method(payer=f"eip155:31337:{poor.address}"),
    )  # fmt: skip
    assert await refused(restricted, sign(wallet, req)) == "invalid_payload"
    assert ACCOUNT not in ledger.balances
    assert await balance(chain_kit, wallet.address) == 5_000_000
    # A refused payment is not burnt: once funded, the poor wallet's signature still pays.
    document = sign(poor, req)
    assert await refused(payments, document) == "insufficient_funds"
    await chain_kit.deployer.mint(chain_kit.token, poor.address, 1)
    assert (await payments.pay(ACCOUNT, header(document), URL)).ok


async def test_concurrent_retries_with_one_payment_credit_once(
    pool: AsyncConnectionPool, billing_schema: str, chain_kit: ChainKit
) -> None:
    payments, ledger = make_payments(pool, billing_schema, chain_kit)
    wallet = await chain_kit.funded_wallet(5_000_000)
    document = sign(wallet, await requirement(payments))
    outcomes = await asyncio.gather(
        *(payments.pay(ACCOUNT, header(document), URL) for _ in range(4))
    )
    assert sum(o.ok for o in outcomes) == 1
    assert {o.error.reason for o in outcomes if not o.ok} == {"invalid_transaction_state"}
    assert ledger.balances[ACCOUNT] == 1_000_000
    assert await balance(chain_kit, wallet.address) == 4_000_000


async def test_settled_but_not_credited_is_recovered_by_nonce(
    pool: AsyncConnectionPool, billing_schema: str, chain_kit: ChainKit
) -> None:
    """The ledger write never happens (the process dies right after settlement): the row stays
    open, and recovery finds the transfer on chain by the authorization's nonce."""
    crashing, ledger = make_payments(pool, billing_schema, chain_kit)

    class Crash(Exception):
        pass

    class DyingLedger:
        async def record_topup(self, *args: Any, **kwargs: Any) -> Any:
            raise Crash

    crashing.ledger = DyingLedger()
    wallet = await chain_kit.funded_wallet(2_000_000)
    document = sign(wallet, await requirement(crashing))
    try:
        await crashing.pay(ACCOUNT, header(document), URL)
    except Crash:
        pass
    else:
        raise AssertionError("the ledger write should have failed")
    assert await balance(chain_kit, wallet.address) == 1_000_000  # settled on chain
    assert ACCOUNT not in ledger.balances
    restarted, _ = make_payments(pool, billing_schema, chain_kit, ledger=ledger)
    assert await restarted.recover() == 1
    assert ledger.balances[ACCOUNT] == 1_000_000
    assert await restarted.recover() == 0  # healed once
    nonce = read_payment(document).authorization.nonce
    assert any(key[3] == nonce for key in ledger.entries)
    # The same payment presented again is still a replay.
    again = await restarted.pay(ACCOUNT, header(document), URL)
    assert not again.ok and again.error.reason == "invalid_transaction_state"
    assert ledger.balances[ACCOUNT] == 1_000_000
    assert DEV_KEYS  # the settlement key came from configuration (x402kit), not an event
