"""Crash safety of x402 top-ups over a real process (platform.md 5.6, 5.8): `authpi up` enforcing
billing and settling on a real Anvil is killed (SIGKILL) after a payment's settlement is mined
and before its ledger write. After a restart the recovery task finds the settlement again on
chain by the authorization's nonce and credits it, exactly once.

The crash window is held open by the test-only setting AUTHPI_BILLING_TEST_PAUSE_AFTER_SETTLEMENT
(the request waits forever once the receipt is in); the process is then killed from outside."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import signal
from pathlib import Path
from typing import Any

import httpx
import psycopg
from eth_account import Account

from authpi.billing.x402.chain import Chain
from authpi.billing.x402.wire import Requirement, encode_header
from authpi.embedded.servers import free_port
from authpi.platform.testing.process import platform_process
from authpi.platform.testing.tenants import basic
from authpi.testing.infra import new_namespace
from authpi.testing.plugin import eventually
from services.billing.tests.x402kit import ChainKit, sign


def unb64(value: str) -> dict[str, Any]:
    return json.loads(base64.b64decode(value))


async def settlement_account(kit: ChainKit) -> str:
    """A settlement key of its own (gas funded), so that no other test's sender shares it."""
    account = Account.create()
    chain = Chain(kit.url)
    try:
        await chain.call("anvil_setBalance", [account.address, hex(10**20)])
    finally:
        await chain.aclose()
    return "0x" + bytes(account.key).hex()


async def log_says(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text(errors="replace")


async def payment_rows(dsn: str, namespace: str) -> list[tuple[str, str | None]]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(f"SELECT status, entry_id FROM {namespace}_billing.x402_payments")
        return [(str(s), e) for s, e in await cur.fetchall()]


async def test_a_payment_settled_before_a_crash_is_credited_once_after_restart(
    infra, chain_kit: ChainKit, tmp_path: Path
) -> None:
    namespace = new_namespace()
    ports = {name: free_port() for name in ("API", "IDP", "OPS")}
    settings = {
        **{f"AUTHPI_{n}_URL": f"http://127.0.0.1:{p}" for n, p in ports.items()},
        "AUTHPI_LOG_LEVEL": "info",
        "AUTHPI_BILLING_ENFORCEMENT": "1",
        "AUTHPI_BILLING_RPC_URL": chain_kit.url,
        "AUTHPI_BILLING_NETWORK": "eip155:31337",
        "AUTHPI_BILLING_ASSET": chain_kit.token,
        "AUTHPI_BILLING_PAY_TO": chain_kit.treasury,
        "AUTHPI_BILLING_SETTLEMENT_KEY": await settlement_account(chain_kit),
    }
    wallet = await chain_kit.funded_wallet(1_000_000)
    chain = Chain(chain_kit.url)
    log = tmp_path / "authpi-up.log"

    # 1. Challenged, then paid: the settlement is mined, and the process stops before the ledger.
    paused = {**settings, "AUTHPI_BILLING_TEST_PAUSE_AFTER_SETTLEMENT": "1"}
    async with platform_process(1, tmp_path, infra, paused, namespace=namespace) as first:
        creds = first.creds
        account = creds["account_id"]
        path = f"/v1/accounts/{account}/issuers"
        auth = basic(creds["api_key_id"], creds["api_key_secret"])
        async with httpx.AsyncClient(base_url=first.api_url, headers=auth, timeout=60) as http:
            challenge = await http.post(path, json={"name": "blocked"})
            assert challenge.status_code == 402, challenge.text
            offer = unb64(challenge.headers["payment-required"])["accepts"][0]
            req = Requirement(
                network=offer["network"], asset=offer["asset"], pay_to=offer["payTo"],
                amount=int(offer["amount"]), name=offer["extra"]["name"],
                version=offer["extra"]["version"],
            )  # fmt: skip
            document = sign(wallet, req)
            nonce = document["payload"]["authorization"]["nonce"]
            payment = {"PAYMENT-SIGNATURE": encode_header(document)}
            paying = asyncio.create_task(http.post(path, json={"name": "paid"}, headers=payment))
            await eventually(lambda: log_says(log, "x402.paused_after_settlement"), timeout=60)
            tx_hash = await chain.find_authorization_used(chain_kit.token, wallet.address, nonce)
            assert tx_hash is not None  # on chain...
            assert await chain.balance_of(chain_kit.token, wallet.address) == 0
            assert await payment_rows(creds_dsn(infra), namespace) == [("settled", None)]
            first.proc.send_signal(signal.SIGKILL)  # ...and the process dies before the ledger
            await first.proc.wait()
            with contextlib.suppress(httpx.HTTPError):
                await paying
    assert await credit_events(infra, namespace) == 0  # nothing reached the ledger

    # 2. Restarted (the same deployment, without the pause): credited from the chain, once.
    async with platform_process(1, tmp_path, infra, settings, namespace=namespace) as second:
        async with httpx.AsyncClient(base_url=second.api_url, headers=auth, timeout=60) as http:

            async def credited() -> list[dict[str, Any]]:
                listed = await http.get(f"/v1/accounts/{account}/credits/ledger")
                return [e for e in listed.json()["data"] if e["type"] == "topup"]

            [topup] = await eventually(credited, timeout=60)
            assert topup["amount_μusd"] == 1_000_000
            assert await payment_rows(creds_dsn(infra), namespace) == [("credited", topup["id"])]
            # The recovery task runs again: still one credit. The account is funded now.
            await eventually(lambda: log_says(log, "x402.credited_on_recovery"), timeout=30)
            written = await http.post(path, json={"name": "after"})
            assert written.status_code == 201, written.text
            replayed = await http.post(f"/v1/accounts/{account}/credits/topups", headers=payment)
            assert replayed.status_code == 402
            assert unb64(replayed.headers["payment-response"])["errorReason"] == (
                "invalid_transaction_state"
            )
            await asyncio.sleep(6)  # past one more recovery round (every 5 s)
            assert len(await credited()) == 1
            assert await credit_events(infra, namespace) == 1
    await chain.aclose()


def creds_dsn(infra: Any) -> str:
    return str(infra.dsn)


async def credit_events(infra: Any, namespace: str) -> int:
    """The billing store's `account.credits.updated` events (only the top-up makes one here)."""
    async with await psycopg.AsyncConnection.connect(creds_dsn(infra)) as conn:
        cur = await conn.execute(
            f"SELECT count(*) FROM {namespace}_billing.events"
            " WHERE type = 'account.credits.updated'"
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0
