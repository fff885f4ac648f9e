"""The official `authpi-admin` SDK, unchanged, against the running platform: webhooks (create, get,
list, update, regenerate the secret, delete), the delivery log, single and bulk redelivery, and the
Events API (list, get, aggregate). Every delivery reaches a real receiver on 127.0.0.1 that checks
its signature with code written from platform.md 7.5."""

from __future__ import annotations

import time

import httpx
import pytest
from authpi_admin.errors import NotFoundError, ValidationError

from authpi.platform.testing.webhooks import (
    all_deliveries,
    create_users,
    new_issuer,
    register,
    secret_of,
    user_of,
)
from authpi.testing.plugin import eventually
from authpi.testing.receiver import WebhookReceiver, verify_signature


async def test_webhook_registration_with_the_sdk(admin, hooks_platform):
    async with WebhookReceiver() as r:
        created = await register(
            admin, r, events=["user.created", "user.deleted"], name="User Events",
            description="e2e", metadata={"team": "identity"},
        )  # fmt: skip
        secret = secret_of(created)
        assert len(secret) == 4 + 43
        assert created.id.startswith("wh_") and created.account_id == hooks_platform.account_id
        assert created.status == "active" and created.url == r.url
        assert created.events == ["user.created", "user.deleted"]
        assert created.auth.model_extra["type"] == "signature"
        assert created.auth.model_extra["signature_secret_hint"] == "..." + secret[-6:]

        got = await admin.webhooks.get(created.id)
        assert got.name == "User Events" and got.description == "e2e"
        assert got.metadata is not None
        assert got.auth.model_extra["signature_secret_hint"] == "..." + secret[-6:]
        assert "signature_secret_plain" not in got.auth.model_extra  # shown once
        assert (await admin.webhook(created.id).get()).id == created.id

        listed = {w.id: w for w in (await admin.webhooks.list(limit=100)).data}
        assert listed[created.id].auth_type == "signature"
        assert listed[created.id].events == ["user.created", "user.deleted"]

        updated = await admin.webhooks.update(
            created.id, {"name": "Renamed", "events": ["user.created"]}
        )
        assert updated.name == "Renamed" and updated.events == ["user.created"]
        assert "signature_secret_plain" not in updated.auth.model_extra

        disabled = await admin.webhook(created.id).update(
            {"status": "disabled", "status_reason": "maintenance"}
        )
        assert disabled.status == "disabled" and disabled.status_reason == "maintenance"
        assert created.id in {w.id for w in (await admin.webhooks.list(status="disabled")).data}
        assert created.id not in {w.id for w in (await admin.webhooks.list(status="active")).data}

        await admin.webhooks.delete(created.id)
        with pytest.raises(NotFoundError):
            await admin.webhooks.get(created.id)
        assert created.id in {w.id for w in (await admin.webhooks.list(status="deleted")).data}


async def test_create_response_carries_the_secret_at_both_documented_places(hooks_platform):
    """platform.md 7.1 documents `data.signature_secret_plain`; the SDK reads `data.auth.…`."""
    p = hooks_platform
    async with (
        WebhookReceiver() as r,
        httpx.AsyncClient(
            base_url=p.api_url, auth=(p.api_key_id, p.api_key_secret), timeout=30
        ) as http,
    ):
        resp = await http.post(
            f"/v1/accounts/{p.account_id}/webhooks",
            json={"name": "raw", "url": r.url, "auth": {"type": "bearer+signature"},
                  "events": ["user.created"]},
        )  # fmt: skip
        assert resp.status_code == 201, resp.text
        data = resp.json()["data"]
        assert data["signature_secret_plain"] == data["auth"]["signature_secret_plain"]
        assert data["bearer_token_plain"] == data["auth"]["bearer_token_plain"]
        assert data["signature_secret_plain"].startswith("whs_")
        await http.delete(f"/v1/accounts/{p.account_id}/webhooks/{data['id']}")


async def test_deliveries_are_signed_and_authenticated_as_registered(admin):
    """`signature`, `bearer` and `bearer+signature`: the receiver checks the HMAC from the spec and
    the bearer token on every request."""
    issuer = await new_issuer(admin)
    async with (
        WebhookReceiver() as signed,
        WebhookReceiver() as bearer,
        WebhookReceiver() as both,
    ):
        hooks = [
            await register(admin, signed, auth="signature", issuer=issuer),
            await register(admin, bearer, auth="bearer", issuer=issuer),
            await register(admin, both, auth="bearer+signature", issuer=issuer),
        ]
        assert both.secrets and both.bearer and bearer.bearer and not bearer.secrets
        users = set(await create_users(admin, issuer, 5))

        async def delivered() -> bool:
            return all(users <= {user_of(x) for x in rr.requests} for rr in (signed, bearer, both))

        await eventually(delivered)
        for rr in (signed, bearer, both):
            assert rr.problems() == []
            assert all(x.attempt == 1 for x in rr.requests)
        assert "x-webhook-signature" not in bearer.requests[0].headers
        assert "authorization" not in signed.requests[0].headers
        for hook in hooks:
            await admin.webhooks.delete(hook.id)


async def test_secret_rotation_signs_with_both_secrets_for_a_while(admin):
    """A regenerated secret comes back once; deliveries then carry two `v1` entries, so receivers
    holding either the old or the new secret accept them (7.1, 7.5)."""
    issuer = await new_issuer(admin)
    async with WebhookReceiver() as r:
        created = await register(admin, r, issuer=issuer)
        old = secret_of(created)
        rotated = await admin.webhook(created.id).update(
            {"auth": {"type": "signature", "regenerate_secret": True}}
        )
        new = secret_of(rotated)
        assert new != old
        r.secrets = [new]
        [user] = await create_users(admin, issuer, 1)
        got = await eventually(lambda: _first_for(r, user))
        assert got.problems == []
        header = got.headers["x-webhook-signature"]
        assert header.count("v1=") == 2
        assert verify_signature(got.body, header, [old])
        assert verify_signature(got.body, header, [new])
        await admin.webhooks.delete(created.id)


async def _first_for(r: WebhookReceiver, user_id: str):
    return next((x for x in r.requests if user_of(x) == user_id), None)


async def test_delivery_log_and_redelivery_with_the_sdk(admin):
    issuer = await new_issuer(admin)
    async with WebhookReceiver() as r:
        hook = await register(admin, r, issuer=issuer)
        users = set(await create_users(admin, issuer, 3))
        await eventually(lambda: _has_users(r, users))
        deliveries = await eventually(lambda: _settled(admin, hook.id, 3))
        assert {d.status for d in deliveries} == {"succeeded"}
        for d in deliveries:
            assert d.id.startswith("dlv_") and d.webhook_id == hook.id
            assert d.event_type == "user.created" and d.attempt_count == 1
            assert d.first_attempted_at is not None and d.last_response_status == 200
            [seen] = r.of_event(d.event_id)
            assert seen.delivery_id == d.id
        filtered = await all_deliveries(
            admin, hook.id, event_type="user.created", status="succeeded"
        )
        assert {d.id for d in filtered} == {d.id for d in deliveries}
        assert await all_deliveries(admin, hook.id, status="failed") == []

        # One immediate attempt: same delivery and event ids, a fresh signature, attempt 2.
        one = deliveries[0]
        again = await admin.webhook(hook.id).deliveries.redeliver(one.id)
        assert again.success is True and again.id == one.id and again.attempt_count == 2
        repeats = r.of_event(one.event_id)
        assert len(repeats) == 2 and {x.delivery_id for x in repeats} == {one.id}
        assert repeats[-1].attempt == 2 and repeats[-1].problems == []
        assert repeats[-1].json()["data"] == repeats[0].json()["data"]

        # Bulk: nothing has failed, so nothing is requeued; the window is required and bounded.
        now = int(time.time() * 1000)
        result = await admin.webhook(hook.id).redeliver.create(
            {"after": now - 3_600_000, "before": now + 60_000}
        )
        assert result["requeued"] == 0
        with pytest.raises(ValidationError):
            await admin.webhook(hook.id).redeliver.create(
                {"after": now - 8 * 86_400_000, "before": now}
            )
        await admin.webhooks.delete(hook.id)


async def test_bulk_redelivery_requeues_failed_deliveries(admin):
    """A receiver that fails every attempt of a one-attempt budget: the deliveries end `failed`;
    bulk redelivery requeues them and they then succeed."""
    issuer = await new_issuer(admin)
    async with WebhookReceiver() as r:
        r.default_status = 500
        hook = await register(admin, r, issuer=issuer, retry={"max_attempts": 1},
                              circuit_breaker={"failure_threshold": 1000})  # fmt: skip
        started = int(time.time() * 1000) - 1000
        users = set(await create_users(admin, issuer, 4))
        await eventually(lambda: _has_users(r, users))
        failed = await eventually(lambda: _settled(admin, hook.id, 4, status="failed"))
        assert all(d.attempt_count == 1 and d.last_error == "http_500" for d in failed)
        r.default_status = 200
        result = await admin.webhook(hook.id).redeliver.create(
            {"after": started, "before": int(time.time() * 1000) + 1000,
             "event_types": ["user.created"]}
        )  # fmt: skip
        assert result["requeued"] == 4
        done = await eventually(lambda: _settled(admin, hook.id, 4, status="succeeded"))
        assert {d.id for d in done} == {d.id for d in failed}
        assert all(d.attempt_count == 2 for d in done)
        assert r.problems() == []
        await admin.webhooks.delete(hook.id)


async def test_events_api_with_the_sdk(admin, hooks_platform):
    issuer = await new_issuer(admin, "events")
    made = [(await create_users(admin, issuer, 1))[0] for _ in range(6)]  # one after another
    users = set(made)

    async def listed():
        page = await admin.events.list(issuer_id=issuer, event_types="user.created", limit=100)
        return page if {e.subject["user_id"] for e in page.data} == users else None

    page = await eventually(listed)
    assert len(page.data) == 6 and page.has_more is False
    assert [e.subject["user_id"] for e in page.data] == made[::-1]  # newest first
    for e in page.data:
        assert e.spec == "1" and e.id.startswith("evt_") and e.source == "com.authpi/v1"
        assert e.subject["account_id"] == hooks_platform.account_id
        assert e.subject["issuer_id"] == issuer and e.trigger == "api"
        assert e.auth is not None and e.auth["type"] == "api_key"
    one = await admin.events.get(page.data[0].id)
    assert one.model_dump() == page.data[0].model_dump()

    # Paging with small pages yields the same events.
    paged = [e.id async for e in admin.events.list_all(issuer_id=issuer, limit=2)]
    assert len(paged) == len(set(paged)) and set(paged) >= {e.id for e in page.data}

    by_user = await admin.events.list(user_id=next(iter(users)))
    assert [e.type for e in by_user.data] == ["user.created"]

    agg = await admin.events.aggregate(issuer_id=issuer, group_by="type")
    assert {b["key"]: b["count"] for b in agg.buckets}.get("user.created") == 6
    hourly = await admin.events.aggregate(
        issuer_id=issuer, event_types="user.created", interval="hour", count_unique="user_id"
    )
    assert hourly.interval == "hour" and sum(b["count"] for b in hourly.buckets) == 6
    assert sum(b.get("unique", 0) for b in hourly.buckets) >= 1


async def _has_users(r: WebhookReceiver, users: set[str]) -> bool:
    return users <= {user_of(x) for x in r.requests}


async def _settled(admin, webhook_id: str, count: int, status: str | None = None):
    found = await all_deliveries(admin, webhook_id)
    if len(found) != count:
        return None
    if status is None:
        return found if all(d.status != "pending" for d in found) else None
    return found if all(d.status == status for d in found) else None
