"""The facilitator interface (platform.md 5.9): verify a payment against a requirement (no
on-chain effect), settle it. `LocalFacilitator` does it here (5.8: local checks, then balance,
nonce state and an `eth_call` simulation on the chain, then the transaction); `RemoteFacilitator`
asks an external facilitator at a configured URL instead (OP-12)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from authpi.billing.x402.chain import Chain, ChainUnavailable, RpcError, Settler
from authpi.billing.x402.verify import verify
from authpi.billing.x402.wire import Payment, Refusal, Requirement, v1_network


class Facilitator(Protocol):
    async def verify(self, payment: Payment, req: Requirement, now: int) -> str:
        """The payer's address once the payment is good; else a Refusal."""
        ...

    async def settle(self, payment: Payment, req: Requirement) -> str:
        """Send the settlement and wait for its receipt: the transaction hash; else a Refusal."""
        ...

    def signers(self) -> list[str]: ...


@dataclass
class LocalFacilitator:
    chain: Chain
    settler: Settler
    receipt_timeout: float = 60.0

    def signers(self) -> list[str]:
        return [self.settler.address]

    async def verify(self, payment: Payment, req: Requirement, now: int) -> str:
        verify(payment, [req], now)
        auth, who = payment.authorization, payment.payer
        try:
            if await self.chain.balance_of(req.asset, auth.from_) < auth.value:
                raise Refusal("insufficient_funds", "the payer's balance is too low", payer=who)
            if await self.chain.authorization_state(req.asset, auth.from_, auth.nonce):
                raise Refusal(
                    "invalid_transaction_state",
                    "the authorization's nonce is already used on chain",
                    payer=who,
                )
            await self.chain.simulate_transfer(
                req.asset, self.settler.address, auth, payment.signature
            )
        except RpcError as exc:
            raise Refusal(
                "invalid_transaction_state", f"the transfer would fail: {exc.message}", payer=who
            ) from exc
        except ChainUnavailable as exc:
            raise Refusal(
                "unexpected_verify_error", "the chain cannot be reached", payer=who, status=500
            ) from exc
        return who

    async def settle(self, payment: Payment, req: Requirement) -> str:
        tx_hash = await self.send(payment, req)
        return await self.confirm(payment, tx_hash)

    async def send(self, payment: Payment, req: Requirement) -> str:
        try:
            return await self.settler.send_transfer(
                req.asset, payment.authorization, payment.signature
            )
        except RpcError as exc:
            raise Refusal(
                "invalid_transaction_state",
                f"settlement refused: {exc.message}",
                payer=payment.payer,
            ) from exc
        except ChainUnavailable as exc:
            raise Refusal(
                "unexpected_settle_error", "the chain cannot be reached", payer=payment.payer,
                status=500,
            ) from exc  # fmt: skip

    async def confirm(self, payment: Payment, tx_hash: str) -> str:
        try:
            receipt = await self.chain.wait_receipt(tx_hash, self.receipt_timeout)
        except (ChainUnavailable, RpcError) as exc:
            raise Refusal(
                "unexpected_settle_error", f"no receipt for {tx_hash}", payer=payment.payer,
                status=500,
            ) from exc  # fmt: skip
        if int(str(receipt.get("status", "0x0")), 16) != 1:
            raise Refusal(
                "invalid_transaction_state", f"settlement {tx_hash} reverted", payer=payment.payer
            )
        return tx_hash


@dataclass
class RemoteFacilitator:
    """An external facilitator's `/verify` and `/settle` (platform.md 5.9)."""

    base_url: str
    timeout: float = 60.0
    _client: httpx.AsyncClient | None = field(default=None, repr=False)

    def signers(self) -> list[str]:
        return []

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        return self._client

    def _body(self, payment: Payment, req: Requirement) -> dict[str, Any]:
        requirements = req.v2() if payment.version == 2 else req.v1()
        return {
            "x402Version": payment.version,
            "paymentPayload": payment.raw,
            "paymentRequirements": requirements,
        }

    async def _post(self, path: str, payment: Payment, req: Requirement) -> dict[str, Any]:
        try:
            response = await self.client.post(
                self.base_url.rstrip("/") + path, json=self._body(payment, req)
            )
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            reason = "unexpected_verify_error" if path == "/verify" else "unexpected_settle_error"
            raise Refusal(reason, "the facilitator cannot be reached", payer=payment.payer,
                          status=500) from exc  # fmt: skip
        if not isinstance(answer, dict):
            raise Refusal("unexpected_verify_error", "the facilitator answered nonsense",
                          payer=payment.payer, status=500)  # fmt: skip
        return answer  # type: ignore[return-value]

    async def verify(self, payment: Payment, req: Requirement, now: int) -> str:
        verify(payment, [req], now)  # refuse locally what needs no round trip
        answer = await self._post("/verify", payment, req)
        if answer.get("isValid") is not True:
            reason = str(answer.get("invalidReason") or "unexpected_verify_error")
            raise Refusal(reason, "the facilitator refused the payment", payer=payment.payer)
        return str(answer.get("payer") or payment.payer)

    async def settle(self, payment: Payment, req: Requirement) -> str:
        answer = await self._post("/settle", payment, req)
        if answer.get("success") is not True:
            reason = str(answer.get("errorReason") or "unexpected_settle_error")
            raise Refusal(reason, "the facilitator did not settle", payer=payment.payer)
        return str(answer.get("transaction"))


def supported(network: str, signers: list[str]) -> dict[str, Any]:
    """GET /supported (platform.md 5.9) for the one network this deployment settles on."""
    return {
        "kinds": [
            {"x402Version": 2, "scheme": "exact", "network": network},
            {"x402Version": 1, "scheme": "exact", "network": v1_network(network)},
        ],
        "extensions": [],
        "signers": {"eip155:*": signers} if signers else {},
    }
