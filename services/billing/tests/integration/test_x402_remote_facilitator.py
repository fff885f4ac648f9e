"""x402 through an external facilitator (platform.md 5.9, AUTHPI_BILLING_FACILITATOR_URL): one
deployment settles on a real local chain and serves the facilitator routes (`/x402/verify`,
`/x402/settle`, `/x402/supported`); another enforces billing with no chain and no settlement key
of its own, only that facilitator's URL. The official `x402` client pays the 402 of a write of
an empty gated account on the second: the write runs in the same retried request, the ledger
shows one top-up, and the chain shows the transfer, sent by the first deployment's settlement
account. The same payment again is refused and credits nothing."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from x402 import x402Client
from x402.http.clients import x402_httpx_transport
from x402.mechanisms.evm.exact.register import register_exact_evm_client

from authpi.billing.x402.chain import Chain
from authpi.platform.testing.plugin import running_platform
from authpi.platform.testing.tenants import basic
from services.billing.tests.x402kit import ChainKit

NETWORK = "eip155:31337"


def unb64(value: str) -> dict[str, Any]:
    return json.loads(base64.b64decode(value))


class Recording(httpx.AsyncBaseTransport):
    """The transport under the x402 client's: each request's payment header and the status."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.exchanges: list[tuple[str | None, int]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.exchanges.append((request.headers.get("payment-signature"), response.status_code))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def gas_funded_key(kit: ChainKit) -> tuple[str, str]:
    """A settlement key of its own (no other test's sender shares its nonces): key, address."""
    account = Account.create()
    chain = Chain(kit.url)
    try:
        await chain.call("anvil_setBalance", [account.address, hex(10**20)])
    finally:
        await chain.aclose()
    return "0x" + bytes(account.key).hex(), str(account.address)


async def test_a_write_paid_through_an_external_facilitator_credits_once(
    infra, chain_kit: ChainKit, tmp_path: Path, kit
) -> None:
    key, settler = await gas_funded_key(chain_kit)
    token = {"billing_network": NETWORK, "billing_asset": chain_kit.token,
             "billing_pay_to": chain_kit.treasury}  # fmt: skip
    async with running_platform(
        infra, tmp_path / "facilitator", billing_rpc_url=chain_kit.url,
        billing_settlement_key=key, **token,
    ) as facilitator, running_platform(
        infra, tmp_path / "gated", billing_enforcement=True,
        billing_facilitator_url=facilitator.api_url + "/x402", **token,
    ) as platform:  # fmt: skip
        async with httpx.AsyncClient(timeout=30) as http:
            remote = (await http.get(facilitator.api_url + "/x402/supported")).json()
            local = (await http.get(platform.api_url + "/x402/supported")).json()
        assert remote["signers"] == {"eip155:*": [settler]}
        assert local["signers"] == {}  # no settlement key here: it settles elsewhere

        tenant = await kit.new_tenant(platform)
        got = await tenant.admin.accounts.get(tenant.account_id)
        assert (got.billing_mode, got.balance_μusd, got.credits_run_out) == ("gated", 0, True)
        payer = await chain_kit.funded_wallet(3_000_000)
        chain = Chain(chain_kit.url)
        treasury_before = await chain.balance_of(chain_kit.token, chain_kit.treasury)

        client = register_exact_evm_client(x402Client(), payer)
        client.set_spend_controls(
            {"allowed_assets": [{"network": NETWORK, "asset": chain_kit.token,
                                 "max_amount_per_payment": "5000000"}]}
        )  # fmt: skip
        wire = Recording()
        name = f"paid-{uuid.uuid4().hex[:6]}"
        base = f"/v1/accounts/{tenant.account_id}"
        async with httpx.AsyncClient(
            base_url=platform.api_url, headers=basic(*tenant.key), timeout=60,
            transport=x402_httpx_transport(client, wire),
        ) as http:  # fmt: skip
            written = await http.post(f"{base}/issuers", json={"name": name})

        # Challenged, then paid and run in the same retried request.
        assert [status for _, status in wire.exchanges] == [402, 201], written.text
        assert written.json()["data"]["name"] == name
        settled = unb64(written.headers["payment-response"])
        assert settled["success"] is True and settled["network"] == NETWORK
        assert settled["payer"].lower() == payer.address.lower()
        # On chain: the facilitator deployment's settlement account sent the transfer.
        receipt = await chain.receipt(settled["transaction"])
        assert receipt is not None and int(receipt["status"], 16) == 1
        assert str(receipt["from"]).lower() == settler.lower()
        assert await chain.balance_of(chain_kit.token, chain_kit.treasury) == (
            treasury_before + 1_000_000
        )
        assert await chain.balance_of(chain_kit.token, payer.address) == 2_000_000
        topups = [e async for e in tenant.credits.ledger_all() if e.type == "topup"]
        assert [t.amount_μusd for t in topups] == [1_000_000]

        # The same payment again, where a payment is always taken: refused, nothing moves.
        payment = wire.exchanges[1][0]
        assert payment is not None
        async with tenant.http() as http:
            replayed = await http.post(
                f"{base}/credits/topups", headers={"PAYMENT-SIGNATURE": payment}
            )
        assert replayed.status_code == 402, replayed.text
        refusal = unb64(replayed.headers["payment-response"])
        assert (refusal["success"], refusal["errorReason"]) == (False, "invalid_transaction_state")
        again = [e async for e in tenant.credits.ledger_all() if e.type == "topup"]
        assert [t.id for t in again] == [t.id for t in topups]
        assert await chain.balance_of(chain_kit.token, chain_kit.treasury) == (
            treasury_before + 1_000_000
        )
        assert await chain.balance_of(chain_kit.token, payer.address) == 2_000_000
        got = await tenant.admin.accounts.get(tenant.account_id)
        assert got.balance_μusd == 1_000_000 and got.credits_run_out is False
        await chain.aclose()
