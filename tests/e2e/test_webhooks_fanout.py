"""Fan-out, seen from outside: 1,000 events to 20 endpoints of which one is blackholed (it accepts
connections and never answers) reach every live endpoint, while the blackholed one has not even
been offered most of its deliveries yet, so it held up nobody; and one account's webhooks never
receive another account's events (platform.md 7.10). The fan-out test runs `authpi up` as a
process of its own (its delivery engine on its own core, the 20 receivers in this one) and creates
the 1,000 users through the Core API with the SDK."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
from authpi_admin.errors import ForbiddenError, NotFoundError

from authpi.platform.testing.process import platform_process
from authpi.platform.testing.tenants import new_account
from authpi.platform.testing.webhooks import (
    WEBHOOK_ENV,
    all_deliveries,
    create_users,
    new_issuer,
    register,
    sdk,
    user_of,
)
from authpi.testing.plugin import eventually
from authpi.testing.receiver import WebhookReceiver

EVENTS, ENDPOINTS = 1_000, 20


async def test_a_thousand_events_to_twenty_endpoints_one_blackholed(infra, tmp_path):
    async with contextlib.AsyncExitStack() as stack:
        up = await stack.enter_async_context(
            platform_process(1, tmp_path, infra, settings=WEBHOOK_ENV)
        )
        c = up.creds
        admin = await stack.enter_async_context(
            sdk(c["api_url"], c["account_id"], (c["api_key_id"], c["api_key_secret"]))
        )
        issuer = await new_issuer(admin, "fanout")
        receivers = [
            await stack.enter_async_context(WebhookReceiver(keep=True)) for _ in range(ENDPOINTS)
        ]
        dead, live = receivers[0], receivers[1:]
        dead.blackholed = True
        hooks = [await register(admin, r, issuer=issuer) for r in receivers]
        users = set(await create_users(admin, issuer, EVENTS, concurrency=32))
        assert len(users) == EVENTS

        async def every_live_endpoint_has_every_event() -> bool:
            return all(len(r.event_ids) >= EVENTS for r in live)

        await eventually(every_live_endpoint_has_every_event, timeout=120, interval=0.2)
        # At this moment the blackholed endpoint has been offered only a few of its deliveries
        # (each waits out the timeout), and its log still holds pending ones: the live
        # endpoints got everything without waiting for it.
        offered = dead.count
        pending = await all_deliveries(admin, hooks[0].id, status="pending")
        assert offered < EVENTS // 2 and len(pending) > EVENTS // 2
        assert all(x.status is None for x in dead.requests)

        for r in live:
            assert {user_of(x) for x in r.requests} == users  # deduplicated by event id
            assert len(r.event_ids) == EVENTS
            assert r.problems() == []
        for hook in hooks:  # deleting cancels the blackholed endpoint's pending deliveries
            await admin.webhooks.delete(hook.id)
        cancelled = await eventually(
            lambda: _all_with_status(admin, hooks[0].id, "cancelled", EVENTS - dead.count)
        )
        assert cancelled


async def _all_with_status(admin, webhook_id: str, status: str, at_least: int) -> bool:
    try:
        found = await all_deliveries(admin, webhook_id, status=status)
    except NotFoundError:
        return True  # a deleted webhook's log is gone with it: nothing left pending either
    return len(found) >= at_least


async def test_accounts_never_receive_each_others_events(admin, hooks_platform):
    p = hooks_platform
    other_id, other_key = await new_account(p, "other")
    async with (
        sdk(p.api_url, other_id, other_key) as other,
        WebhookReceiver() as mine,
        WebhookReceiver() as theirs,
    ):
        # No event filter and no subject filter: everything of the account.
        hook_a = await register(admin, mine, events=None)
        hook_b = await register(other, theirs, events=None)
        issuer_a, issuer_b = await new_issuer(admin, "iso"), await new_issuer(other, "iso")
        users_a, users_b = await asyncio.gather(
            create_users(admin, issuer_a, 20), create_users(other, issuer_b, 20)
        )

        async def both_have_theirs() -> bool:
            got_a = {x.json()["data"]["subject"].get("user_id") for x in mine.requests}
            got_b = {x.json()["data"]["subject"].get("user_id") for x in theirs.requests}
            return set(users_a) <= got_a and set(users_b) <= got_b

        await eventually(both_have_theirs, timeout=60)
        for r, account in ((mine, p.account_id), (theirs, other_id)):
            accounts = {x.json()["data"]["subject"]["account_id"] for x in r.requests}
            assert accounts == {account}
            assert r.problems() == []

        # Nor does one account read the other's webhooks, deliveries or events.
        with_a_key = httpx.AsyncClient(
            base_url=p.api_url, auth=(p.api_key_id, p.api_key_secret), timeout=30
        )
        async with with_a_key as http:
            for path in (
                f"/v1/accounts/{other_id}/webhooks",
                f"/v1/accounts/{other_id}/webhooks/{hook_b.id}",
                f"/v1/accounts/{other_id}/webhooks/{hook_b.id}/deliveries",
                f"/v1/accounts/{other_id}/events",
                f"/v1/accounts/{p.account_id}/webhooks/{hook_b.id}",
            ):
                resp = await http.get(path)
                assert resp.status_code in (403, 404), (path, resp.status_code)
        events_a = [e async for e in admin.events.list_all(issuer_id=issuer_b, limit=100)]
        assert events_a == []
        for client, hook in ((admin, hook_b), (other, hook_a)):
            try:
                await client.webhooks.get(hook.id)
                raise AssertionError("a webhook of another account was readable")
            except (NotFoundError, ForbiddenError):
                pass
        await admin.webhooks.delete(hook_a.id)
        await other.webhooks.delete(hook_b.id)
