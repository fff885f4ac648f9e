"""Webhook delivery under faults, seen from outside: a real receiver on 127.0.0.1 (checking every
signature from platform.md 7.5), the official SDK for the webhook, its delivery log and
redelivery, and the platform as a subprocess where it must be killed.

- 500 three times then 200: one delivery record with four attempts (7.6, 7.8);
- the receiver down for the whole budget: the webhook becomes `failing` (the breaker, 7.7) and
  then `disabled` by the system; re-enabled and redelivered, the receiver gets the event;
- SIGKILL of the platform while deliveries are in flight: after the restart every event is
  delivered, and the log holds one delivery per event, none duplicated (7.10)."""

from __future__ import annotations

import json
from pathlib import Path

from authpi.embedded.servers import free_port
from authpi.platform.testing.process import platform_process
from authpi.platform.testing.webhooks import (
    WEBHOOK_ENV,
    all_deliveries,
    create_users,
    new_issuer,
    register,
    sdk,
    user_of,
)
from authpi.testing.infra import new_namespace
from authpi.testing.plugin import eventually
from authpi.testing.receiver import WebhookReceiver


async def _settled(admin, webhook_id: str, count: int, status: str):
    found = await all_deliveries(admin, webhook_id)
    return found if len(found) == count and all(d.status == status for d in found) else None


async def test_three_500s_then_200_is_one_delivery_with_four_attempts(admin):
    issuer = await new_issuer(admin)
    async with WebhookReceiver() as r:
        r.answer(500, 500, 500)
        hook = await register(admin, r, issuer=issuer)
        [user] = await create_users(admin, issuer, 1)
        [d] = await eventually(lambda: _settled(admin, hook.id, 1, "succeeded"), timeout=60)
        assert d.attempt_count == 4 and d.last_response_status == 200
        got = r.of_event(d.event_id)
        assert [x.attempt for x in got] == [1, 2, 3, 4]
        assert [x.status for x in got] == [500, 500, 500, 200]
        assert {x.delivery_id for x in got} == {d.id} and user_of(got[0]) == user
        assert r.problems() == []  # every attempt signed afresh, every signature valid
        stamps = [int(x.headers["x-webhook-signature"].split(",")[0][2:]) for x in got]
        assert stamps == sorted(stamps)
        assert d.first_attempted_at is not None and d.last_attempted_at is not None
        assert d.first_attempted_at < d.last_attempted_at
        await admin.webhooks.delete(hook.id)


async def test_receiver_down_for_the_budget_fails_then_disables_then_redelivery_reaches_it(admin):
    issuer = await new_issuer(admin)
    r = WebhookReceiver()
    await r.start()
    await r.down()  # the port is known and closed
    hook = await register(
        admin, r, issuer=issuer, retry={"max_attempts": 3},
        circuit_breaker={"failure_threshold": 3, "probe_interval_seconds": 1,
                         "disable_after_seconds": 3},
    )  # fmt: skip
    [user] = await create_users(admin, issuer, 1)

    async def status_is(wanted: str):
        got = await admin.webhooks.get(hook.id)
        return got if got.status == wanted else None

    failing = await eventually(lambda: status_is("failing"), timeout=60, interval=0.05)
    assert failing.status_by == "system" and failing.status_reason == "circuit_open"
    disabled = await eventually(lambda: status_is("disabled"), timeout=60)
    assert disabled.status_by == "system" and disabled.status_reason == "circuit_open_expired"
    [d] = await all_deliveries(admin, hook.id)
    assert d.status in ("failed", "cancelled") and d.attempt_count >= 1
    assert d.last_error == "connect_error" and r.count == 0

    try:
        await r.start()  # the same port, up again
        resumed = await admin.webhook(hook.id).update({"status": "active"})
        assert resumed.status == "active"
        again = await admin.webhook(hook.id).deliveries.redeliver(d.id)
        assert again.success is True and again.status == "succeeded"
        assert again.attempt_count == d.attempt_count + 1
        [got] = r.of_event(d.event_id)
        assert got.delivery_id == d.id and user_of(got) == user and got.problems == []

        # The breaker's transitions are events of the account's audit log.
        async def paused_and_resumed():
            page = await admin.events.list(event_types="webhook.paused,webhook.resumed", limit=100)
            mine = [e.type for e in page.data if hook.id in json.dumps(e.model_dump())]
            return mine if {"webhook.paused", "webhook.resumed"} <= set(mine) else None

        await eventually(paused_and_resumed)
        await admin.webhooks.delete(hook.id)
    finally:
        await r.stop()


async def test_sigkill_while_deliveries_are_in_flight(infra, tmp_path: Path):
    """The platform killed with SIGKILL while requests to the receiver are open and unanswered:
    after the restart (same data, same namespace) every event reaches the receiver, each under
    its one stable delivery id, and the log holds exactly one delivery per event."""
    ports = {name: free_port() for name in ("API", "IDP", "OPS")}
    env = {**WEBHOOK_ENV, **{f"AUTHPI_{n}_URL": f"http://127.0.0.1:{p}" for n, p in ports.items()}}
    ns = new_namespace()
    total, before_kill = 200, 40
    async with WebhookReceiver() as r:

        def blackhole_after_some(got) -> None:
            if r.count >= before_kill:
                r.blackholed = True  # later requests stay open: in flight at the kill

        r.on_request = blackhole_after_some
        async with platform_process(1, tmp_path, infra, namespace=ns, settings=env) as up:
            c = up.creds
            admin = sdk(c["api_url"], c["account_id"], (c["api_key_id"], c["api_key_secret"]))
            async with admin:
                issuer = await new_issuer(admin, "kill")
                hook = await register(admin, r, issuer=issuer)
                users = set(await create_users(admin, issuer, total, concurrency=8))
                in_flight = await eventually(lambda: _open_requests(r, before_kill), timeout=60)
                up.proc.kill()
                await up.proc.wait()
        assert in_flight > 0
        unanswered = {x.event_id for x in r.requests if x.status is None}
        r.on_request = None
        r.blackholed = False
        await r.close_idle()

        async with platform_process(1, tmp_path, infra, namespace=ns, settings=env) as up:
            c = up.creds
            admin = sdk(c["api_url"], c["account_id"], (c["api_key_id"], c["api_key_secret"]))
            async with admin:

                async def all_received() -> bool:
                    return users <= {user_of(x) for x in r.answered_ok()}

                await eventually(all_received, timeout=90)
                log = await eventually(lambda: _settled(admin, hook.id, total, "succeeded"))
        ids = [d.id for d in log]
        assert len(ids) == len(set(ids)) == total
        assert len({d.event_id for d in log}) == total
        by_event = {d.event_id: d.id for d in log}
        for got in r.requests:  # at least once, but always under the event's one delivery id
            assert by_event[got.event_id] == got.delivery_id
        assert unanswered <= set(by_event)  # the open requests were attempted again
        assert r.problems() == []


async def _open_requests(r: WebhookReceiver, after: int) -> int:
    """How many requests the receiver holds unanswered (blackholed), once there are some."""
    return sum(1 for x in r.requests[after:] if x.status is None)
