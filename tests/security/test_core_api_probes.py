"""Probes of the recent Core API and public routes from outside, the way an attacker would:
schemathesis (`make fuzz`) over both ports' /openapi.json, and hand probes with httpx.

What was probed: webhooks (create, list, get, patch, delete, deliveries, single and bulk
redelivery), events (list with filters and cursors, get, aggregate), notes (CRUD, backlinks,
count), approvals, organization invitations, organization SSO domains and the IdP's
`/{issuer}/sso/discover`, billing (credits, usage, its estimate, invoices, payment methods, the
Stripe route) and `/x402/verify|settle|supported`. For each: the scope of every route against
core-api.md 5.2, weaker keys (read-only, write-only, organization-level) on stronger operations,
tenant A's key with tenant B's ids (and, inside one account, ids under another issuer or
organization), hostile bodies (NUL, control characters, quotes, huge and deeply nested values,
wrong types, invalid UTF-8), webhook URL tricks (credentials, decimal/octal/short/IPv6-mapped
loopback, `localhost.`, metadata names; redirects are never followed, names are checked when
resolved) and the anonymous x402 routes (malformed payloads, huge bodies, rate limits).

What held: every foreign id answered 404 (another account's path 403, as elsewhere), every
weaker key 403 `insufficient_scope`, every URL trick 400, bodies were bounded.

What was found and fixed (a test below, or in the file named):
- A `"`, a control character or a backslash in any name (a webhook, an issuer) reached the audit
  log's JSON, and `event::text::bytea` read its escapes as bytea escapes: the webhook fan-out and
  the public stream crashed on that row and restarted onto it forever, so one tenant's issuer
  name stopped webhooks for every account (and a backslash was delivered corrupted).
- An invitation could be resent without limit, each resend mailing the invited address: now at
  most once a minute (429 with Retry-After, core-api.md 7 #13).
- `/x402/verify` and `/x402/settle` answered 500 to a `maxTimeoutSeconds` that is not a number,
  without any credential (now `invalid_payment_requirements`); the anonymous x402 routes had no
  rate limit at all (test_rate_limits.py).
- A `webhooks:write` key got a fresh signing secret by switching `auth.type` to none and back
  (test_key_privilege.py); removing a payment method took `credits:write`, not
  `credits:delete` (test_route_scopes.py).
- `POST …/sso/domains` answered 500 to invalid UTF-8 and to a deeply nested body
  (test_fuzz_findings.py, test_hostile_bodies.py), and took an IPv4 address as an email domain.
- schemathesis: every event listed or fetched broke its response schema (`timestamp` documented
  as a `oneOf` of integer and number, test_fuzz_findings.py); the bulk redelivery body had the
  same `oneOf`. A second run over the same routes found nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
from authpi_admin.errors import RateLimitError

from authpi.platform.testing.mail import Mailbox
from authpi.platform.testing.plugin import RunningPlatform, running_platform
from authpi.platform.testing.tenants import new_account
from authpi.platform.testing.webhooks import sdk
from authpi.testing.plugin import eventually

# A name that is valid JSON text but full of escapes: a quote, a control character, a backslash.
HOSTILE_NAME = 'Acme "prod"\x01\x1b[31m C:\\tenants\\acme'


class Tenant(msgspec.Struct, kw_only=True):
    account_id: str
    key: tuple[str, str]
    http: httpx.AsyncClient  # on the account's path, with its all-scopes key


@pytest.fixture
async def tenant(platform: RunningPlatform) -> AsyncIterator[Tenant]:
    account_id, key = await new_account(platform, f"probe-{uuid.uuid4().hex[:6]}")
    base_url = f"{platform.api_url}/v1/accounts/{account_id}"
    async with httpx.AsyncClient(base_url=base_url, auth=key, timeout=30) as http:
        yield Tenant(account_id=account_id, key=key, http=http)


def data(response: httpx.Response) -> Any:
    assert response.status_code < 300, response.text
    return response.json()["data"]


async def test_escapes_in_an_event_keep_webhook_deliveries_flowing(tenant: Tenant) -> None:
    """Fan-out, the delivery engine's claim and a manual redelivery all read the stored event;
    each once failed on the first quote in it. The target never answers (a `.invalid` name), so
    every attempt fails, but each is made and recorded."""
    api = tenant.http
    hook = data(await api.post("/webhooks", json={
        "name": "probe", "url": "https://hooks.example.invalid/in", "auth": {"type": "signature"},
        "events": ["issuer.created"],
    }))  # fmt: skip
    hostile = data(await api.post("/issuers", json={"name": HOSTILE_NAME}))
    after = data(await api.post("/issuers", json={"name": "after"}))
    events = data(await api.get("/events", params={"event_types": "issuer.created"}))
    by_issuer = {e["subject"]["issuer_id"]: e for e in events}
    assert by_issuer[hostile["id"]]["data"]["name"] == HOSTILE_NAME
    wanted = {by_issuer[hostile["id"]]["id"], by_issuer[after["id"]]["id"]}

    async def attempted() -> list[dict[str, Any]] | None:
        listed = data(await api.get(f"/webhooks/{hook['id']}/deliveries"))
        mine = [d for d in listed if d["event_id"] in wanted and d["attempt_count"] >= 1]
        return mine if len(mine) == 2 else None

    deliveries = await eventually(attempted)
    first = next(d for d in deliveries if d["event_id"] == by_issuer[hostile["id"]]["id"])
    url = f"/webhooks/{hook['id']}/deliveries/{first['id']}/redeliver"
    redelivered = data(await api.post(url))
    assert redelivered["success"] is False and redelivered["attempt_count"] > first["attempt_count"]


async def test_an_invitation_is_resent_at_most_once_a_minute(
    platform: RunningPlatform, tenant: Tenant, mailbox: Mailbox
) -> None:
    admin = sdk(platform.api_url, tenant.account_id, tenant.key)
    issuer = (await admin.issuers.create({"name": "resend"})).id
    org = (await admin.issuer(issuer).organizations.create({"name": "Org"})).id
    address = f"invitee-{uuid.uuid4().hex[:8]}@example.com"
    invitations = admin.issuer(issuer).organization(org).invitations
    created = await invitations.create({"email_invited": address, "scopes": ["member"]})
    await mailbox.wait_for(to=address, subject_contains="invited")
    await invitations.resend(created.id)  # the first resend goes out at once
    await mailbox.wait_for(to=address, subject_contains="invited")
    with pytest.raises(RateLimitError) as refused:
        await invitations.resend(created.id)
    assert 1 <= (refused.value.retry_after or 0) <= 60
    assert len(await mailbox.messages(to=address)) == 2  # the refused resend mailed nothing
    assert (await invitations.get(created.id)).status == "pending"


# The facilitator of a deployment whose chain node does not answer (a closed port): every
# refusal below is decided before the node would be asked.
TREASURY = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
USDC = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
PAYER = "0x857b06519E91e3A54538791bDbb0E22373e36b66"


@pytest.fixture(scope="module")
async def facilitator(infra: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with running_platform(
        infra, tmp_path_factory.mktemp("x402-probes"), billing_pay_to=TREASURY,
        billing_rpc_url="http://127.0.0.1:9", billing_settlement_key="0x" + "11" * 32,
    ) as running:  # fmt: skip
        yield running.api_url


def payment(requirements: dict[str, Any]) -> dict[str, Any]:
    authorization = {"from": PAYER, "to": TREASURY, "value": "1000000", "validAfter": "0",
                     "validBefore": "4102444800", "nonce": "0x" + "ab" * 32}  # fmt: skip
    signed = {"signature": "0x" + "cd" * 65, "authorization": authorization}
    payload = {"x402Version": 2, "accepted": requirements, "payload": signed}
    return {"paymentPayload": payload, "paymentRequirements": requirements}


REQUIREMENTS = {"scheme": "exact", "network": "eip155:8453", "amount": "1000000", "asset": USDC,
                "payTo": TREASURY, "extra": {"name": "USD Coin", "version": "2"}}  # fmt: skip


@pytest.mark.parametrize("timeout", ["abc", [1], {"s": 1}, True, 1.5, -5])
@pytest.mark.parametrize("route", ["verify", "settle"])
async def test_x402_requirements_with_a_timeout_that_is_no_number_are_refused(
    facilitator: str, route: str, timeout: Any
) -> None:
    body = payment({**REQUIREMENTS, "maxTimeoutSeconds": timeout})
    async with httpx.AsyncClient(base_url=facilitator, timeout=30) as anonymous:
        answer = await anonymous.post(f"/x402/{route}", json=body)
    assert answer.status_code == 200, answer.text
    reason = answer.json()["invalidReason" if route == "verify" else "errorReason"]
    assert reason == "invalid_payment_requirements"
