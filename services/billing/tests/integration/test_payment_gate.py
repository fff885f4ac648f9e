"""The 402 gate of Core API writes (platform.md 5.6, 5.10) on a deployment that enforces
billing: a write of an account at or below zero answers 402 with the v2 `PAYMENT-REQUIRED`
header and a body that is both an AuthPI error and the v1 challenge; reads and the billing
routes stay open; the same request retried with `X-PAYMENT` or `PAYMENT-SIGNATURE` is paid
(credited once, however often it is retried), then runs, and carries the settlement header.

x402 verification and settlement are the billing service's `Payments`; here a fake of it stands
in, which credits the ledger with what the header names, so that the gate's part is what is
tested: the challenge, the retry, the headers, the ledger."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Mapping

import httpx
import pytest

from authpi.contracts.billing import Challenge, PaymentOutcome, Settlement
from authpi.errors import PaymentRequired
from authpi.platform.testing.plugin import running_platform
from authpi.platform.testing.tenants import basic

ASSET = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
PAY_TO = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"


def b64(value: object) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def unb64(value: str) -> dict:
    return json.loads(base64.b64decode(value))


class FakePayments:
    """Challenges for $1 on Base Sepolia; a payment header is `{nonce, value}` in base64."""

    def __init__(self, ledger) -> None:
        self.ledger = ledger
        self.paid: list[str] = []

    async def challenge(self, account_id: str, resource_url: str) -> Challenge:
        v1 = {"scheme": "exact", "network": "base-sepolia", "maxAmountRequired": "1000000",
              "asset": ASSET, "payTo": PAY_TO, "resource": resource_url,
              "description": "AuthPI credit top-up", "mimeType": "application/json",
              "maxTimeoutSeconds": 300, "extra": {"name": "USDC", "version": "2"}}  # fmt: skip
        v2 = {"x402Version": 2, "error": "PAYMENT-SIGNATURE header is required",
              "resource": {"url": resource_url, "description": "AuthPI credit top-up",
                           "mimeType": "application/json"},
              "accepts": [{"scheme": "exact", "network": "eip155:84532", "amount": "1000000",
                           "asset": ASSET, "payTo": PAY_TO, "maxTimeoutSeconds": 300,
                           "extra": {"name": "USDC", "version": "2"}}]}  # fmt: skip
        return Challenge(header_v2=b64(v2), body_v1={"x402Version": 1, "accepts": [v1]})

    async def pay(
        self, account_id: str, headers: Mapping[str, str], resource_url: str
    ) -> PaymentOutcome:
        v2 = headers.get("payment-signature")
        payload = unb64(v2 or headers["x-payment"])
        if payload["value"] <= 0:
            error = PaymentRequired("payment failed: invalid_exact_evm_payload_authorization_value",
                                    reason="x402.value")  # fmt: skip
            return PaymentOutcome(ok=False, error=error)
        settlement = Settlement(
            network="eip155:84532", asset=ASSET, payer="0x" + "ab" * 20, pay_to=PAY_TO,
            value=payload["value"], nonce=payload["nonce"], tx_hash="0x" + os.urandom(32).hex(),
            settled_at=0,
        )  # fmt: skip
        topup = await self.ledger.record_topup(account_id, settlement, method_id=None)
        self.paid.append(payload["nonce"])
        response = b64({"success": True, "transaction": settlement.tx_hash,
                        "network": settlement.network, "payer": settlement.payer})  # fmt: skip
        name = "PAYMENT-RESPONSE" if v2 else "X-PAYMENT-RESPONSE"
        return PaymentOutcome(ok=True, topup=topup, response_header=(name, response))


@pytest.fixture(scope="module")
async def gated(infra, tmp_path_factory):
    async with running_platform(
        infra, tmp_path_factory.mktemp("gated"), billing_enforcement=True,
        trusted_proxies=("127.0.0.1/32",),
    ) as running:  # fmt: skip
        from authpi.platform.testing.tenants import part

        fake = FakePayments(part(running, "ledger"))
        part(running, "payments_port").payments = fake
        part(running, "gateway").payment_gate.payments = fake
        yield running, fake


async def test_a_write_of_an_empty_gated_account_gets_the_402_challenge(gated, kit):
    platform, _ = gated
    tenant = await kit.new_tenant(platform)
    path = f"/v1/accounts/{tenant.account_id}/issuers"
    async with tenant.http() as http:
        refused = await http.post(path, json={"name": "blocked"})
        read = await http.get(path)
        method = await http.post(
            f"/v1/accounts/{tenant.account_id}/payment-methods",
            json={"network": "eip155:84532", "asset": ASSET},
        )
    assert refused.status_code == 402
    body = refused.json()
    assert body["error"] == "payment_required" and body["retryable"] is True
    assert body["error_description"].startswith(f"Account {tenant.account_id} has no prepaid")
    assert "1.00 USD" in body["error_description"]
    assert body["x402Version"] == 1
    [v1] = body["accepts"]
    assert (v1["scheme"], v1["maxAmountRequired"], v1["resource"]) == (
        "exact", "1000000", platform.api_url + path,
    )  # fmt: skip
    v2 = unb64(refused.headers["payment-required"])
    assert v2["x402Version"] == 2 and v2["resource"]["url"] == platform.api_url + path
    assert v2["accepts"][0]["amount"] == "1000000"
    assert read.status_code == 200  # reads are never gated
    assert method.status_code == 201  # nor are the routes an account funds itself with

    got = await tenant.admin.accounts.get(tenant.account_id)
    assert (got.billing_mode, got.balance_μusd, got.credits_run_out) == ("gated", 0, True)


@pytest.mark.parametrize(
    ("header", "response_header"),
    [("X-PAYMENT", "x-payment-response"), ("PAYMENT-SIGNATURE", "payment-response")],
)
async def test_the_retried_write_is_paid_then_runs(gated, kit, header, response_header):
    platform, fake = gated
    tenant = await kit.new_tenant(platform)
    path = f"/v1/accounts/{tenant.account_id}/issuers"
    nonce = "0x" + os.urandom(32).hex()
    payment = b64({"nonce": nonce, "value": 1_000_000})
    async with tenant.http() as http:
        paid = await http.post(path, json={"name": f"paid-{uuid.uuid4().hex[:6]}"},
                               headers={header: payment})  # fmt: skip
        assert paid.status_code == 201, paid.text
        assert unb64(paid.headers[response_header])["success"] is True
        # The same payment again: credited once; the balance is positive, so it simply runs.
        again = await http.post(path, json={"name": f"again-{uuid.uuid4().hex[:6]}"},
                                headers={header: payment})  # fmt: skip
        assert again.status_code == 201
    entries = [e async for e in tenant.credits.ledger_all()]
    topups = [e for e in entries if e.type == "topup"]
    assert [(t.amount_μusd, t.reference) for t in topups] == [(1_000_000, nonce)]
    assert fake.paid.count(nonce) == 1


async def test_a_failed_payment_is_a_402_and_nothing_runs(gated, kit):
    platform, _ = gated
    tenant = await kit.new_tenant(platform)
    path = f"/v1/accounts/{tenant.account_id}/issuers"
    async with tenant.http() as http:
        refused = await http.post(
            path, json={"name": "x"}, headers={"X-PAYMENT": b64({"nonce": "0x01", "value": 0})}
        )
        listed = await http.get(path)
    assert refused.status_code == 402
    assert refused.json()["error_description"].startswith("payment failed")
    assert listed.json()["data"] == []


async def test_the_explicit_topup_route_pays_and_is_idempotent(gated, kit):
    platform, _ = gated
    tenant = await kit.new_tenant(platform)
    nonce = "0x" + os.urandom(32).hex()
    headers = {"PAYMENT-SIGNATURE": b64({"nonce": nonce, "value": 2_000_000})}
    first = await tenant.credits.create_topup({}, headers=headers)
    second = await tenant.credits.create_topup({}, headers=headers)
    assert (first.balance_μusd, first.duplicate, first.payment_reference) == (2_000_000, False,
                                                                              nonce)  # fmt: skip
    assert (second.entry_id, second.duplicate) == (first.entry_id, True)
    async with httpx.AsyncClient(base_url=platform.api_url, headers=basic(*tenant.key)) as http:
        challenge = await http.post(f"/v1/accounts/{tenant.account_id}/credits/topups")
    assert challenge.status_code == 402 and "payment-required" in challenge.headers


async def test_idp_traffic_is_never_blocked_by_billing(gated, kit):
    platform, _ = gated
    tenant = await kit.new_tenant(platform)
    base = f"/v1/accounts/{tenant.account_id}"
    payment = b64({"nonce": "0x" + os.urandom(32).hex(), "value": 1_000_000})
    async with tenant.http() as http:
        issuer = await http.post(f"{base}/issuers", json={"name": "idp"},
                                 headers={"X-PAYMENT": payment})  # fmt: skip
        assert issuer.status_code == 201, issuer.text
        issuer_id = issuer.json()["data"]["id"]
        client = await http.post(
            f"{base}/issuers/{issuer_id}/clients",
            json={"name": "m2m", "type": "m2m",
                  "settings": {"grant_types": ["client_credentials"], "scopes": ["a:read"]}},
        )  # fmt: skip
        assert client.status_code == 201, client.text
        created = client.json()["data"]
    await kit.ledger_of(platform).adjust(tenant.account_id, -5_000_000, "correction")
    form = {"grant_type": "client_credentials", "client_id": created["id"],
            "client_secret": created["secret"]}  # fmt: skip

    async def token() -> httpx.Response | None:
        async with httpx.AsyncClient(base_url=platform.idp_url) as idp:
            answer = await idp.post(f"/{issuer_id}/token", data=form)
        return answer if answer.status_code == 200 else None

    assert "access_token" in (await kit.eventually(token)).json()

    async def blocked_write() -> httpx.Response | None:
        # The adjustment was made in-process, not through the Core API: nothing waited for the
        # gateway's balances to learn it, so its first writes may still pass.
        async with tenant.http() as http:
            answer = await http.post(f"{base}/issuers", json={"name": "more"})
        return answer if answer.status_code == 402 else None

    await kit.eventually(blocked_write)
    assert "access_token" in (await kit.eventually(token)).json()  # the IdP still answers
