"""`Payments` (the protocol of authpi.contracts.billing): the 402 challenge of an account and
the payment of a retried request (platform.md 5.6): verify (5.8) -> settle on chain -> the
ledger's idempotent top-up -> the settlement response header.

Exactly once: the payment's (network, asset, payer, nonce) is claimed in `x402_payments` under
a PostgreSQL advisory lock on that key before anything is sent, so a second request with the same
payment is refused (`invalid_transaction_state`) and credits nothing. The lock is held on the
request's connection until the ledger has the top-up; a process that dies meanwhile drops it, and
the recovery task (`recover`) takes the open row over: it finds the settlement on chain by the
authorization's nonce and credits it through the same idempotent top-up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from psycopg_pool import AsyncConnectionPool

from authpi.billing.x402 import store
from authpi.billing.x402.chain import Chain, ChainUnavailable, RpcError
from authpi.billing.x402.facilitator import Facilitator, LocalFacilitator
from authpi.billing.x402.verify import verify
from authpi.billing.x402.wire import (
    V2_CHALLENGE,
    V2_PAYMENT,
    Authorization,
    Payment,
    Refusal,
    Requirement,
    challenge_body_v1,
    decode_header,
    encode_header,
    payment_header,
    payment_required_v2,
    read_payment,
    response_header,
    settlement_response,
)
from authpi.contracts.billing import Challenge, PaymentOutcome, Settlement, TopupResult
from authpi.crypto.clock import Clock
from authpi.errors import AuthpiError
from authpi.observability import get_logger

log = get_logger("authpi.billing.x402")

DEFAULT_TOPUP = 1_000_000  # μUSD = USDC base units (6 decimals): $1 (platform.md 5.1)


class PaymentRequired(AuthpiError):
    """402: the payment was refused (or is missing); `x402_reason` is the spec's reason."""

    error, status, retryable = "payment_required", 402, True


class PaymentMalformed(AuthpiError):
    error, status = "invalid_request", 400


class PaymentFailed(AuthpiError):
    error, status, retryable = "server_error", 500, True


class X402Method(Protocol):
    """What a payment requirement is built from: the account's enabled x402 payment method."""

    @property
    def id(self) -> str: ...
    @property
    def payer(self) -> str | None: ...
    @property
    def topup_amount(self) -> int: ...


class TopupLedger(Protocol):
    async def record_topup(
        self, account_id: str, settlement: Settlement, *, method_id: str | None
    ) -> TopupResult: ...


MethodLookup = Callable[[str], Awaitable[X402Method | None]]


@dataclass(frozen=True, kw_only=True)
class ChainConfig:
    """The one network and asset this deployment takes top-ups in (platform.md 5.7: USDC on
    Base, or Base Sepolia for testing; a local chain in development)."""

    network: str
    asset: str
    asset_name: str
    asset_version: str
    pay_to: str
    max_timeout_s: int = 300


@dataclass
class Payments:
    pool: AsyncConnectionPool
    schema: str
    clock: Clock
    config: ChainConfig
    facilitator: Facilitator
    ledger: TopupLedger
    methods: MethodLookup
    chain: Chain | None = None  # for recovery by nonce; None with an external facilitator alone
    recovery_interval_s: float = 5.0
    # Test only (AUTHPI_BILLING_TEST_PAUSE_AFTER_SETTLEMENT, off by default): once a settlement's
    # receipt is in, wait forever before the ledger write, so that a test can kill the process
    # in that window and show that the payment is credited once after a restart.
    pause_after_settlement: bool = False

    async def requirement(
        self, account_id: str, resource_url: str
    ) -> tuple[Requirement, X402Method | None]:
        method = await self.methods(account_id)
        amount = method.topup_amount if method is not None else DEFAULT_TOPUP
        c = self.config
        req = Requirement(
            network=c.network, asset=c.asset, pay_to=c.pay_to, amount=amount, name=c.asset_name,
            version=c.asset_version, max_timeout_seconds=c.max_timeout_s,
            resource_url=resource_url,
        )  # fmt: skip
        return req, method

    async def challenge(self, account_id: str, resource_url: str) -> Challenge:
        req, _ = await self.requirement(account_id, resource_url)
        header = encode_header(payment_required_v2(req, f"{V2_PAYMENT} header is required"))
        return Challenge(header_v2=header, body_v1=challenge_body_v1(req))

    async def pay(
        self, account_id: str, headers: Mapping[str, str], resource_url: str
    ) -> PaymentOutcome:
        found = payment_header(headers)
        req, method = await self.requirement(account_id, resource_url)
        if found is None:
            return self._refused(Refusal("invalid_payload", "no payment header"), 2, req)
        version = found[0]
        try:
            payment = read_payment(decode_header(found[1]))
            version = payment.version
            return await self._pay(account_id, payment, req, method)
        except Refusal as refusal:
            return self._refused(refusal, version, req)

    def _refused(self, refusal: Refusal, version: int, req: Requirement) -> PaymentOutcome:
        log.info("x402.refused", reason=refusal.reason, payer=refusal.payer)
        description = f"x402 payment refused ({refusal.reason}): {refusal.message}"
        cls = {400: PaymentMalformed, 500: PaymentFailed}.get(refusal.status, PaymentRequired)
        name, value = response_header(
            version,
            settlement_response(success=False, payer=refusal.payer, transaction="",
                                network=req.network, reason=refusal.reason),
        )  # fmt: skip
        headers = {name: value}
        if cls is PaymentRequired:
            again = payment_required_v2(req, refusal.reason)
            headers[V2_CHALLENGE] = encode_header(again)
        error = cls(description, reason=refusal.reason, headers=headers)
        error.x402_reason = refusal.reason  # type: ignore[attr-defined]
        return PaymentOutcome(ok=False, response_header=(name, value), error=error)

    async def _pay(
        self, account_id: str, payment: Payment, req: Requirement, method: X402Method | None
    ) -> PaymentOutcome:
        now_s = self.clock.now_ms() // 1000
        # Everything decidable without the chain or the database first (5.8 steps 1-6).
        verify(payment, [req], now_s, payer=method.payer if method is not None else None)
        key = _key(req, payment.authorization)
        async with self.pool.connection() as conn:
            await conn.set_autocommit(True)
            await store.lock(conn, key)
            try:
                return await self._settle_once(conn, account_id, key, payment, req, method, now_s)
            finally:
                with contextlib.suppress(Exception):
                    await store.unlock(conn, key)
                await conn.set_autocommit(False)

    async def _settle_once(
        self, conn: Any, account_id: str, key: store.Key, payment: Payment, req: Requirement,
        method: X402Method | None, now_s: int,
    ) -> PaymentOutcome:  # fmt: skip
        auth = payment.authorization
        claimed = await store.claim(
            conn, self.schema, key, account_id=account_id,
            method_id=method.id if method is not None else None, pay_to=req.pay_to,
            value=auth.value, version=payment.version, authorization=auth.wire(),
            signature=payment.signature, now=self.clock.now_ms(),
        )  # fmt: skip
        if not claimed:
            raise Refusal(
                "invalid_transaction_state", "this payment was already presented", payer=auth.from_
            )
        try:
            await self.facilitator.verify(payment, req, now_s)
        except Refusal:
            await store.release(conn, self.schema, key)
            raise
        tx_hash = await self._send(conn, key, payment, req)
        await store.mark(conn, self.schema, key, "settled", self.clock.now_ms(), tx_hash=tx_hash)
        if self.pause_after_settlement:
            log.warning(
                "x402.paused_after_settlement", tx_hash=tx_hash, nonce=auth.nonce,
                hint="test-only setting AUTHPI_BILLING_TEST_PAUSE_AFTER_SETTLEMENT",
            )  # fmt: skip
            await asyncio.Event().wait()
        topup = await self._credit(conn, key, account_id, method, req, auth, tx_hash)
        header = response_header(
            payment.version,
            settlement_response(success=True, payer=auth.from_, transaction=tx_hash,
                                network=req.network),
        )  # fmt: skip
        log.info("x402.settled", account_id=account_id, tx_hash=tx_hash, duplicate=topup.duplicate)
        return PaymentOutcome(ok=True, topup=topup, response_header=header)

    async def _send(self, conn: Any, key: store.Key, payment: Payment, req: Requirement) -> str:
        facilitator = self.facilitator
        try:
            if isinstance(facilitator, LocalFacilitator):
                tx_hash = await facilitator.send(payment, req)
                await store.mark(
                    conn, self.schema, key, "sent", self.clock.now_ms(), tx_hash=tx_hash
                )
                return await facilitator.confirm(payment, tx_hash)
            return await facilitator.settle(payment, req)
        except Refusal as refusal:
            if refusal.status != 500:
                # Refused or reverted: nothing moved, so nothing may be credited.
                await store.mark(conn, self.schema, key, "failed", self.clock.now_ms(),
                                 reason=refusal.reason)  # fmt: skip
            raise

    async def _credit(
        self, conn: Any, key: store.Key, account_id: str, method: X402Method | None,
        req: Requirement, auth: Authorization, tx_hash: str,
    ) -> TopupResult:  # fmt: skip
        settlement = Settlement(
            network=req.network, asset=req.asset.lower(), payer=auth.from_.lower(),
            pay_to=req.pay_to.lower(), value=auth.value, nonce=auth.nonce, tx_hash=tx_hash,
            settled_at=self.clock.now_ms(),
        )  # fmt: skip
        topup = await self.ledger.record_topup(
            account_id, settlement, method_id=method.id if method is not None else None
        )
        await store.mark(
            conn, self.schema, key, "credited", self.clock.now_ms(), entry_id=topup.entry_id
        )
        return topup

    # -- recovery -------------------------------------------------------------------------

    async def recovery_task(self, stop: asyncio.Event) -> None:
        """Singleton task: heal payments left open by a crash, at start and then regularly."""
        while not stop.is_set():
            try:
                healed = await self.recover()
                if healed:
                    log.info("x402.recovered", payments=healed)
            except Exception:
                log.exception("x402.recovery_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.recovery_interval_s)

    async def recover(self) -> int:
        """Finish every open payment whose request is gone (its lock is free): credit those
        settled on chain, forget those that can no longer settle. The number finished."""
        if self.chain is None:
            return 0
        healed = 0
        async with self.pool.connection() as conn:
            await conn.set_autocommit(True)
            try:
                for row in await store.open_payments(conn, self.schema):
                    key: store.Key = (row.network, row.asset, row.payer, row.nonce)
                    if not await store.try_lock(conn, key):
                        continue  # a live request is still on it
                    try:
                        healed += await self._recover_one(conn, key)
                    finally:
                        await store.unlock(conn, key)
            finally:
                await conn.set_autocommit(False)
        return healed

    async def _recover_one(self, conn: Any, key: store.Key) -> int:
        assert self.chain is not None
        row = await store.get(conn, self.schema, key)
        if row is None or row.status not in ("claimed", "sent", "settled"):
            return 0
        try:
            tx_hash = await self.chain.find_authorization_used(row.asset, row.payer, row.nonce)
            # The nonce may have been used by another authorization of the payer's (paying
            # someone else): credit only a transfer of the value to our recipient.
            if tx_hash is not None and not await self.chain.transferred(
                tx_hash, row.asset, row.payer, row.pay_to, row.value
            ):
                await store.mark(conn, self.schema, key, "failed", self.clock.now_ms(),
                                 reason="invalid_transaction_state")  # fmt: skip
                return 1
        except (ChainUnavailable, RpcError):
            return 0
        if tx_hash is None:
            valid_before = int(row.authorization["validBefore"])
            if self.clock.now_ms() // 1000 < valid_before + 60:
                return 0  # may still land: look again later
            await store.mark(conn, self.schema, key, "failed", self.clock.now_ms(),
                             reason="invalid_transaction_state")  # fmt: skip
            return 1
        auth = Authorization(
            from_=row.payer, to=row.pay_to, value=row.value,
            valid_after=int(row.authorization["validAfter"]),
            valid_before=int(row.authorization["validBefore"]), nonce=row.nonce,
        )  # fmt: skip
        req = Requirement(
            network=row.network, asset=row.asset, pay_to=row.pay_to, amount=row.value,
            name=self.config.asset_name, version=self.config.asset_version,
        )  # fmt: skip
        method = _MethodRef(row.method_id) if row.method_id else None
        await store.mark(conn, self.schema, key, "settled", self.clock.now_ms(), tx_hash=tx_hash)
        topup = await self._credit(conn, key, row.account_id, method, req, auth, tx_hash)
        log.info("x402.credited_on_recovery", account_id=row.account_id, tx_hash=tx_hash,
                 duplicate=topup.duplicate)  # fmt: skip
        return 1


@dataclass(frozen=True)
class _MethodRef:
    id: str
    payer: str | None = None
    topup_amount: int = DEFAULT_TOPUP


def _key(req: Requirement, auth: Authorization) -> store.Key:
    return (req.network, req.asset.lower(), auth.from_.lower(), auth.nonce.lower())


def outcome_headers(outcome: PaymentOutcome) -> dict[str, str]:
    return dict([outcome.response_header]) if outcome.response_header else {}
