"""Shared set-up of the x402 tests: a real Anvil with the EIP-3009 token, funded wallets, signed
payments, and `Payments` over a fresh billing schema with a top-up ledger that is idempotent on
(network, asset, payer, nonce) like the service's."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from authpi.billing.x402.chain import Chain, Settler
from authpi.billing.x402.facilitator import LocalFacilitator
from authpi.billing.x402.payments import ChainConfig, Payments
from authpi.billing.x402.verify import typed_data
from authpi.billing.x402.wire import Requirement, encode_header, read_payment
from authpi.contracts.billing import Settlement, TopupResult
from authpi.crypto.clock import SystemClock
from authpi.embedded.anvil import DEV_KEYS


@dataclass
class ChainKit:
    url: str
    token: str
    deployer: Settler
    treasury: str = str(Account.from_key(DEV_KEYS[2]).address)

    async def funded_wallet(self, value: int = 10_000_000) -> LocalAccount:
        wallet = Account.create()
        if value:
            await self.deployer.mint(self.token, wallet.address, value)
        return wallet


@dataclass
class Method:
    id: str = "pm_test"
    payer: str | None = None
    topup_amount: int = 1_000_000


@dataclass
class MemoryLedger:
    """The ledger's top-up contract: one credit per (network, asset, payer, nonce)."""

    balances: dict[str, int] = field(default_factory=dict[str, int])
    entries: dict[tuple[str, str, str, str], tuple[str, str]] = field(
        default_factory=dict[tuple[str, str, str, str], tuple[str, str]]
    )
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def record_topup(
        self, account_id: str, settlement: Settlement, *, method_id: str | None
    ) -> TopupResult:
        key = (settlement.network, settlement.asset, settlement.payer, settlement.nonce)
        async with self.lock:
            if key in self.entries:
                entry_id, account = self.entries[key]
                return TopupResult(balance=self.balances[account], entry_id=entry_id,
                                   duplicate=True, payment_reference=settlement.nonce)  # fmt: skip
            entry_id = f"cle_{len(self.entries) + 1}"
            self.entries[key] = (entry_id, account_id)
            self.balances[account_id] = self.balances.get(account_id, 0) + settlement.value
            return TopupResult(balance=self.balances[account_id], entry_id=entry_id,
                               duplicate=False, payment_reference=settlement.nonce)  # fmt: skip


def make_payments(
    pool: Any, schema: str, kit: ChainKit, *, method: Method | None = None,
    ledger: MemoryLedger | None = None, settlement_key: str = DEV_KEYS[1],
) -> tuple[Payments, MemoryLedger]:  # fmt: skip
    chain = Chain(kit.url)
    ledger = ledger or MemoryLedger()
    config = ChainConfig(network="eip155:31337", asset=kit.token, asset_name="USD Coin",
                         asset_version="2", pay_to=kit.treasury)  # fmt: skip
    found = method or Method()

    async def methods(account_id: str) -> Method:
        return found

    payments = Payments(
        pool=pool, schema=schema, clock=SystemClock(), config=config,
        facilitator=LocalFacilitator(chain, Settler.from_key(chain, settlement_key)),
        ledger=ledger, methods=methods, chain=chain, recovery_interval_s=0.2,
    )  # fmt: skip
    return payments, ledger


def sign(
    wallet: LocalAccount, req: Requirement, *, version: int = 2, domain_name: str | None = None,
    **changes: Any,
) -> dict[str, Any]:  # fmt: skip
    now = int(time.time())
    auth: dict[str, Any] = {
        "from": wallet.address, "to": req.pay_to, "value": str(req.amount),
        "validAfter": str(now - 30), "validBefore": str(now + 120),
        "nonce": "0x" + os.urandom(32).hex(),
    }  # fmt: skip
    auth.update(changes)
    blank = {"signature": "0x" + "00" * 65, "authorization": auth}
    unsigned = read_payment({"x402Version": 2, "accepted": req.v2(), "payload": blank})
    domain = Requirement(**{f: getattr(req, f) for f in req.__struct_fields__})
    if domain_name is not None:
        domain = Requirement(**{**{f: getattr(req, f) for f in req.__struct_fields__},
                                "name": domain_name})  # fmt: skip
    signature = wallet.sign_typed_data(full_message=typed_data(domain, unsigned)).signature.hex()
    payload = {"signature": "0x" + signature.removeprefix("0x"), "authorization": auth}
    if version == 1:
        return {"x402Version": 1, "scheme": "exact", "network": req.network, "payload": payload}
    return {"x402Version": 2, "accepted": req.v2(), "payload": payload}


def header(document: dict[str, Any]) -> dict[str, str]:
    name = "PAYMENT-SIGNATURE" if document["x402Version"] == 2 else "X-PAYMENT"
    return {name: encode_header(document)}
