"""x402 top-ups end to end on a running platform that enforces billing, settled on a real local
chain (platform.md 5.6-5.10): the official `x402` client from PyPI pays the 402 of a write of an
empty gated account and gets the write done in the same retried request; the ledger, the chain
and the Events API show the top-up. Over HTTP: a replayed payment is refused and credits
nothing, two concurrent retries with one payment credit once, and the facilitator routes
(`/x402/supported`, `/verify`, `/settle`) answer per 5.9. Without a chain a gated write still
answers 402, with nothing to pay, and the payment routes answer `422 billing.payments_unconfigured`.

The platform here starts its own Anvil, as `make run` does with AUTHPI_BILLING_LOCAL_CHAIN: the
token deployed once into the data folder and the development payer funded
(`chain/local-chain.json` says where)."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from x402 import x402Client
from x402.http.clients import x402_httpx_transport
from x402.mechanisms.evm.exact.register import register_exact_evm_client

from authpi.billing.x402.chain import Chain
from authpi.billing.x402.wire import Requirement, encode_header
from authpi.platform.testing.plugin import RunningPlatform, running_platform
from authpi.platform.testing.tenants import basic
from services.billing.tests.x402kit import sign


def unb64(value: str) -> dict[str, Any]:
    return json.loads(base64.b64decode(value))


class Local:
    """The platform and what its local chain holds (`chain/local-chain.json`)."""

    def __init__(self, platform: RunningPlatform, described: dict[str, str]) -> None:
        self.platform = platform
        self.rpc_url = described["rpc_url"]
        self.network = described["network"]
        self.token = described["token"]
        self.treasury = described["treasury"]
        self.payer_key = described["payer_key"]
        self.settlement_account = described["settlement_account"]

    async def balance(self, address: str) -> int:
        chain = Chain(self.rpc_url)
        try:
            return await chain.balance_of(self.token, address)
        finally:
            await chain.aclose()

    async def receipt(self, tx_hash: str) -> dict[str, Any]:
        chain = Chain(self.rpc_url)
        try:
            found = await chain.receipt(tx_hash)
            assert found is not None
            return found
        finally:
            await chain.aclose()


@pytest.fixture(scope="module")
async def local(infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Local]:
    data_dir: Path = tmp_path_factory.mktemp("x402-local")
    async with running_platform(
        infra, data_dir, billing_enforcement=True, billing_local_chain=True,
        trusted_proxies=("127.0.0.1/32",),
    ) as platform:  # fmt: skip
        described = json.loads((data_dir / "chain" / "local-chain.json").read_text())
        yield Local(platform, described)


class Recording(httpx.AsyncBaseTransport):
    """The transport under the x402 client's: every status the server answered, in order."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.statuses: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.statuses.append(response.status_code)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def add_method(tenant: Any, local: Local, payer: str | None, amount: int) -> str:
    body: dict[str, Any] = {"network": local.network, "asset": local.token,
                            f"topup_amount_{chr(0x3BC)}usd": amount}  # fmt: skip
    if payer is not None:
        body["payer"] = f"{local.network}:{payer}"
    async with tenant.http() as http:
        created = await http.post(f"/v1/accounts/{tenant.account_id}/payment-methods", json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["data"]["id"])


async def topups(tenant: Any) -> list[Any]:
    return [e async for e in tenant.credits.ledger_all() if e.type == "topup"]


def requirement_of(challenge: httpx.Response) -> Requirement:
    """The requirement a 402 offers, from its v2 `PAYMENT-REQUIRED` header."""
    assert challenge.status_code == 402, challenge.text
    document = unb64(challenge.headers["payment-required"])
    [offer] = document["accepts"]
    return Requirement(
        network=offer["network"], asset=offer["asset"], pay_to=offer["payTo"],
        amount=int(offer["amount"]), name=offer["extra"]["name"],
        version=offer["extra"]["version"], max_timeout_seconds=offer["maxTimeoutSeconds"],
        resource_url=document["resource"]["url"],
    )  # fmt: skip


async def test_the_official_x402_client_pays_the_402_and_the_write_runs(local: Local, kit) -> None:
    platform = local.platform
    tenant = await kit.new_tenant(platform)
    payer = Account.from_key(local.payer_key)  # the funded development payer of `make run`
    await add_method(tenant, local, payer.address, 2_000_000)
    got = await tenant.admin.accounts.get(tenant.account_id)
    assert (got.billing_mode, got.balance_μusd, got.credits_run_out) == ("gated", 0, True)
    treasury_before = await local.balance(local.treasury)
    payer_before = await local.balance(payer.address)

    client = register_exact_evm_client(x402Client(), payer)
    # The client pays only tokens it knows unless told: allow the local test token, capped.
    client.set_spend_controls(
        {"allowed_assets": [{"network": local.network, "asset": local.token,
                             "max_amount_per_payment": "5000000"}]}
    )  # fmt: skip
    wire = Recording()
    name = f"paid-{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(
        base_url=platform.api_url, headers=basic(*tenant.key), timeout=60,
        transport=x402_httpx_transport(client, wire),
    ) as http:  # fmt: skip
        written = await http.post(f"/v1/accounts/{tenant.account_id}/issuers", json={"name": name})

    assert wire.statuses == [402, 201]  # challenged, then paid and run in the same retry
    assert written.status_code == 201, written.text
    assert written.json()["data"]["name"] == name
    settled = unb64(written.headers["payment-response"])
    assert settled["success"] is True and settled["network"] == local.network
    assert settled["payer"].lower() == payer.address.lower()
    tx_hash = settled["transaction"]

    # The chain: the transfer is mined, the treasury got the method's top-up amount.
    assert int((await local.receipt(tx_hash))["status"], 16) == 1
    assert await local.balance(local.treasury) == treasury_before + 2_000_000
    assert await local.balance(payer.address) == payer_before - 2_000_000
    # The ledger: one top-up of that amount; the account is funded.
    [topup] = await topups(tenant)
    assert topup.amount_μusd == 2_000_000
    got = await tenant.admin.accounts.get(tenant.account_id)
    assert (got.balance_μusd, got.credits_run_out) == (2_000_000, False)

    # The Events API: account.credits.updated (the audit log follows the stream).
    async def credited() -> list[dict[str, Any]]:
        async with tenant.http() as http:
            listed = await http.get(
                f"/v1/accounts/{tenant.account_id}/events",
                params={"event_types": "account.credits.updated"},
            )
        assert listed.status_code == 200, listed.text
        return listed.json()["data"]

    events = await kit.eventually(credited, timeout=30)
    assert events[0]["type"] == "account.credits.updated"
    assert events[0]["data"]["balance_μusd"] == 2_000_000


async def test_a_replayed_payment_is_refused_and_credits_nothing(local: Local, kit) -> None:
    platform = local.platform
    tenant = await kit.new_tenant(platform)
    wallet = Account.create()
    await _fund(local, wallet.address, 3_000_000)
    path = f"/v1/accounts/{tenant.account_id}/issuers"
    async with tenant.http() as http:
        req = requirement_of(await http.post(path, json={"name": "blocked"}))
        payment = {"PAYMENT-SIGNATURE": encode_header(sign(wallet, req))}
        paid = await http.post(path, json={"name": "paid"}, headers=payment)
        assert paid.status_code == 201, paid.text
        treasury = await local.balance(local.treasury)
        # The same payment again, where a payment is always taken: refused, nothing moves.
        replayed = await http.post(
            f"/v1/accounts/{tenant.account_id}/credits/topups", headers=payment
        )
    assert replayed.status_code == 402, replayed.text
    assert replayed.json()["error"] == "payment_required"
    refusal = unb64(replayed.headers["payment-response"])
    assert (refusal["success"], refusal["errorReason"]) == (False, "invalid_transaction_state")
    assert "payment-required" in replayed.headers  # a fresh challenge to pay instead
    assert [t.amount_μusd for t in await topups(tenant)] == [1_000_000]
    assert await local.balance(local.treasury) == treasury


async def test_two_concurrent_retries_with_one_payment_credit_once(local: Local, kit) -> None:
    platform = local.platform
    tenant = await kit.new_tenant(platform)
    wallet = Account.create()
    await _fund(local, wallet.address, 1_000_000)
    path = f"/v1/accounts/{tenant.account_id}/issuers"
    async with tenant.http() as http:
        req = requirement_of(await http.post(path, json={"name": "blocked"}))
        payment = {"X-PAYMENT": encode_header(sign(wallet, req, version=1))}
        treasury = await local.balance(local.treasury)
        answers = await asyncio.gather(
            http.post(path, json={"name": "first"}, headers=payment),
            http.post(path, json={"name": "second"}, headers=payment),
        )
        listed = await http.get(path)
    statuses = sorted(a.status_code for a in answers)
    assert statuses[0] == 201, [a.text for a in answers]
    assert statuses[1] in (201, 402)  # the second is refused, or runs on the first's credit
    assert [t.amount_μusd for t in await topups(tenant)] == [1_000_000]
    assert await local.balance(local.treasury) == treasury + 1_000_000
    assert len(listed.json()["data"]) == statuses.count(201)


async def test_the_facilitator_routes(local: Local, kit) -> None:
    platform = local.platform
    wallet = Account.create()
    await _fund(local, wallet.address, 2_000_000)  # enough to pay twice: a replay is no shortfall
    req = Requirement(
        network=local.network, asset=local.token, pay_to=local.treasury, amount=1_000_000,
        name="USD Coin", version="2", resource_url=platform.api_url + "/x402",
    )  # fmt: skip
    document = sign(wallet, req)
    body = {"paymentPayload": document, "paymentRequirements": req.v2()}
    async with httpx.AsyncClient(base_url=platform.api_url, timeout=60) as http:
        supported = (await http.get("/x402/supported")).json()
        verified = (await http.post("/x402/verify", json=body)).json()
        unmoved = await local.balance(wallet.address)
        settled = (await http.post("/x402/settle", json=body)).json()
        again = (await http.post("/x402/verify", json=body)).json()
        elsewhere = await http.post(
            "/x402/verify",
            json={**body, "paymentRequirements": {**req.v2(), "payTo": wallet.address}},
        )
        malformed = await http.post("/x402/verify", json={"paymentPayload": 1})
    assert {"x402Version": 2, "scheme": "exact", "network": local.network} in supported["kinds"]
    assert supported["signers"] == {"eip155:*": [local.settlement_account]}
    assert verified == {"isValid": True, "payer": wallet.address}
    assert unmoved == 2_000_000  # verification moves nothing
    assert settled["success"] is True and settled["network"] == local.network
    assert int((await local.receipt(settled["transaction"]))["status"], 16) == 1
    assert await local.balance(wallet.address) == 1_000_000
    assert again["isValid"] is False
    assert again["invalidReason"] == "invalid_transaction_state"
    assert elsewhere.json()["invalidReason"] == "invalid_payment_requirements"
    assert malformed.status_code == 422  # not a PaymentPayload: the API's validation error
    assert malformed.json()["error"] == "invalid_request"


async def test_without_a_chain_the_payment_routes_say_so(infra, tmp_path: Path, kit) -> None:
    async with running_platform(infra, tmp_path, billing_enforcement=True) as platform:
        tenant = await kit.new_tenant(platform)
        async with tenant.http() as http:
            gated = await http.post(
                f"/v1/accounts/{tenant.account_id}/issuers", json={"name": "blocked"}
            )
            topup = await http.post(f"/v1/accounts/{tenant.account_id}/credits/topups")
            supported = await http.get("/x402/supported")
    # The gate still refuses the write, and says there is nothing to pay here.
    assert gated.status_code == 402, gated.text
    assert (gated.json()["accepts"], "payment-required" in gated.headers) == ([], False)
    assert "accepts no x402 payment" in gated.json()["error_description"]
    for answer in (topup, supported):
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"] == "invalid_request"
        assert "not configured" in answer.json()["error_description"]


async def _fund(local: Local, address: str, value: int) -> None:
    from authpi.billing.x402.localchain import mint

    await mint(local.rpc_url, local.token, address, value)
