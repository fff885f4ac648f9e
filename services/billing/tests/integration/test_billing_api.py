"""The billing routes through the official SDK (contract 4.5, 4.31-4.33): the paginated ledger,
usage by period and its estimate, invoices, x402 payment methods (add, update, remove: the
removed one keeps its record and still shows on the account), the Stripe set-up intent's
documented refusal, scopes, and the top-up route while no x402 chain is configured."""

from __future__ import annotations

import pytest
from authpi_admin.errors import ApiError

from authpi.contracts.billing import MU
from authpi.platform.testing.tenants import ADMIN
from authpi.testing.plugin import eventually

USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
PAYER = "eip155:84532:0x857b06519E91e3A54538791bDbb0E22373e36b66"


async def test_payment_methods_add_update_remove_keep_the_record(tenant):
    pm = tenant.payment_methods
    created = await pm.create({"type": "x402", "network": "eip155:84532", "asset": USDC,
                               "payer": PAYER, f"topup_amount_{MU}usd": 2_000_000})  # fmt: skip
    data = created.model_dump()
    assert data["id"].startswith("pm_") and data["type"] == "x402" and data["enabled"] is True
    assert (data["network"], data["asset"], data["payer"]) == ("eip155:84532", USDC, PAYER)
    assert data[f"topup_amount_{MU}usd"] == 2_000_000 and data["removed_at"] is None
    updated = (await pm.update(data["id"], {"enabled": False})).model_dump()
    assert updated["enabled"] is False and updated["disabled_at"] is not None
    await pm.delete(data["id"])
    with pytest.raises(ApiError) as gone:
        await pm.update(data["id"], {"enabled": True})
    assert gone.value.status_code == 404

    async def listed():
        account = await tenant.admin.accounts.get(tenant.account_id)
        methods = [m.model_dump() for m in account.payment_methods or []]
        return methods if methods and methods[0]["removed_at"] is not None else None

    methods = await eventually(listed)
    assert [(m["id"], m["enabled"]) for m in methods] == [(data["id"], False)]


@pytest.mark.parametrize(
    "body",
    [
        {"network": "base", "asset": USDC},
        {"network": "eip155:84532", "asset": "0x12"},
        {"network": "eip155:84532", "asset": USDC, "payer": "eip155:8453:0x" + "1" * 40},
        {"network": "eip155:84532", "asset": USDC, f"topup_amount_{MU}usd": 0},
        {"network": "eip155:84532", "asset": USDC, "type": "card"},
    ],
)
async def test_bad_payment_methods_are_refused(tenant, body):
    with pytest.raises(ApiError) as refused:
        await tenant.payment_methods.create(body)
    assert refused.value.status_code in (400, 422) and refused.value.error == "invalid_request"


async def test_stripe_setup_intent_answers_a_documented_error(tenant):
    with pytest.raises(ApiError) as refused:
        await tenant.payment_methods.setup_intent_stripe()
    assert (refused.value.status_code, refused.value.error) == (422, "invalid_request")
    assert "Stripe is not configured" in refused.value.error_description


async def test_ledger_pages_newest_first(platform, tenant, kit):
    ledger = kit.ledger_of(platform)
    for i in range(5):
        await ledger.adjust(tenant.account_id, 100 + i, "goodwill", actor=ADMIN)
    first = await tenant.credits.ledger(limit=2)
    assert first.has_more and first.next_cursor
    everything = [e async for e in tenant.credits.ledger_all(limit=2)]
    assert [e.amount_μusd for e in everything] == [104, 103, 102, 101, 100]
    assert [e.balance_after_μusd for e in everything] == [510, 406, 303, 201, 100]
    assert {e.type for e in everything} == {"adjustment"}
    async with tenant.http() as http:
        bad = await http.get(f"/v1/accounts/{tenant.account_id}/credits/ledger?cursor=nope")
    assert bad.status_code == 400


async def test_usage_estimate_and_invoices(platform, tenant, kit):
    metering = kit.part(platform, "metering")
    from services.billing.tests.integration.test_ledger import publish_usage

    now = platform.handle.rt.clock.now_ms()
    hour = 3_600_000
    await publish_usage(platform, tenant.account_id, 30, now - 3 * hour)
    await publish_usage(platform, tenant.account_id, 5, now)

    async def closed():
        await metering.close_due()
        page = await tenant.usage.list()
        return page if page.data and page.data[0].lines else None

    page = await eventually(closed)
    [period] = page.data
    [line] = period.lines
    assert (line.dimension, line.operation, line.line_count, line.count) == (
        "machine_auth", "machine.token.issued", 1, 30,
    )  # fmt: skip
    assert line.amount_μusd == 30 * 50 and line.config_version == "2026-01"
    other = await tenant.usage.list(period="2001-01")
    assert other.data[0].period == "2001-01" and other.data[0].lines == []
    with pytest.raises(ApiError) as bad:
        await tenant.usage.list(period="2026-13")
    assert bad.value.status_code == 400

    async def open_counted():
        estimate = await tenant.usage.estimate()
        machine = [line for line in estimate.lines if line["dimension"] == "machine_auth"]
        # The SDK's own calls are metered too (each successful API-key check), in the gateway's
        # own batches of facts, which may arrive after the tokens'.
        keys = [line for line in estimate.lines if line["dimension"] == "api_key_verification"]
        return estimate if sum(line["count"] for line in machine) == 35 and keys else None

    estimate = await eventually(open_counted)
    assert estimate.period == period.period and estimate.estimate is True
    assert estimate.billing_profile == "ungated" and estimate.trial is False
    assert estimate.total_μusd == 0  # within the $1 monthly usage credit
    assert any(line["dimension"] == "api_key_verification" for line in estimate.lines)
    invoices = await tenant.invoices.list()
    assert [(i.period, i.status, i.total_μusd) for i in invoices.data] == [
        (period.period, "open", 0)
    ]
    assert not invoices.has_more


async def test_topup_without_x402_configured_is_refused(tenant):
    with pytest.raises(ApiError) as refused:
        await tenant.credits.create_topup({})
    assert refused.value.status_code == 422


async def test_billing_routes_need_credits_scopes(platform, tenant):
    from authpi.platform.testing.tenants import key_ready, part

    directory = part(platform, "directory")
    key = await directory.create_api_key(tenant.account_id, "ro", ["credits:read"], actor=ADMIN)
    await key_ready(platform, key.key_id, key.secret)
    from services.billing.tests.integration.conftest import Tenant

    reader = Tenant(platform, tenant.account_id, (key.key_id, key.secret))
    await reader.credits.ledger()
    with pytest.raises(ApiError) as refused:
        await reader.payment_methods.create({"network": "eip155:84532", "asset": USDC})
    assert refused.value.status_code == 403


async def test_identity_lifecycle_is_metered(tenant):
    issuer = await tenant.admin.issuers.create({"name": "lifecycle"})
    for i in range(3):
        await tenant.admin.issuer(issuer.id).users.create(
            {"username": f"user{i}@lifecycle.test", "username_type": "email"}
        )

    async def counted():
        estimate = await tenant.usage.estimate()
        lines = [line for line in estimate.lines if line["dimension"] == "identity_lifecycle"]
        return lines if sum(line["count"] for line in lines) >= 3 else None

    lines = await eventually(counted)
    assert sum(line[f"amount_{MU}usd"] for line in lines) == 0  # free in the documented card
