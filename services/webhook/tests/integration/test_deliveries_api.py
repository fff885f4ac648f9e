"""The delivery log and redelivery on the Core API (platform.md 7.8, 7.9; contract 4.11, 4.12)
through the official SDK, on a platform that allows loopback receivers (as `make run` does) and
retries at once: webhooks are registered through the API, events are put in the audit log, and
a real receiver on 127.0.0.1 answers. The breaker's status changes show on the webhook itself."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
import pytest_asyncio
from aiohttp import web
from authpi_admin import AuthPIAdmin
from authpi_admin.errors import ApiError, ValidationError

from authpi.eventstore.sqltext import render
from authpi.platform.testing import tenants
from authpi.platform.testing.plugin import RunningPlatform, running_platform
from authpi.platform.testing.tenants import ADMIN, key_ready, part
from authpi.testing.infra import Infra
from authpi.testing.plugin import eventually


class Receiver:
    """Answers each path from a script of statuses (the last one repeats)."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[int]] = {}
        self.received: dict[str, list[tuple[dict[str, str], bytes]]] = {}
        self.port = 0

    def url(self, statuses: list[int] | None = None) -> tuple[str, str]:
        path = uuid.uuid4().hex[:12]
        self.scripts[path] = statuses or [200]
        self.received[path] = []
        return path, f"http://127.0.0.1:{self.port}/{path}"

    async def handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        seen = self.received[path]
        seen.append((dict(request.headers), await request.read()))
        script = self.scripts[path]
        return web.Response(status=script[min(len(seen), len(script)) - 1], text="noted")


@pytest_asyncio.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/{path}", rec.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield rec
    await runner.cleanup()


@pytest_asyncio.fixture(scope="module")
async def dev(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningPlatform]:
    async with running_platform(
        infra,
        tmp_path_factory.mktemp("deliveries"),
        webhooks_allow_insecure=True,
        webhooks_allow_private=True,
        webhooks_retry_delays=(0,),
    ) as running:
        yield running


class Tenant:
    def __init__(self, platform: RunningPlatform, account_id: str, key: tuple[str, str]) -> None:
        self.platform = platform
        self.account_id = account_id
        self.key = key

    def sdk(self, key: tuple[str, str] | None = None) -> AuthPIAdmin:
        return AuthPIAdmin(
            api_key=key or self.key,
            account_id=self.account_id,
            base_url=self.platform.api_url,
            retries=False,
        )

    async def webhook(self, url: str, **fields: Any) -> tuple[str, str]:
        fields.setdefault("events", ["user.created", "user.deleted"])
        created = await self.sdk().webhooks.create(
            {"name": "deliveries", "url": url, "auth": {"type": "signature"}, **fields}
        )
        auth = created.auth.model_dump()
        return created.id, auth["signature_secret_plain"]

    async def emit(self, pool: Any, event_type: str = "user.created") -> str:
        """An event as the audit log holds it (what the audit-log consumers write)."""
        event_id = f"evt_{uuid.uuid4().hex[:26].upper()}"
        now = int(time.time() * 1000)
        event = {
            "spec": "1",
            "id": event_id,
            "type": event_type,
            "source": "com.authpi/v1",
            "subject": {"account_id": self.account_id},
            "timestamp": now,
            "data": {},
        }
        sql = render(
            "INSERT INTO {schema}.audit_events (id, account_id, type, occurred_at, event)"
            " VALUES (%s, %s, %s, %s, %s::jsonb)",
            schema=f"{self.platform.namespace}_webhook",
        )
        async with pool.connection() as conn:
            await conn.execute(
                sql,
                [event_id, self.account_id, event_type, now, msgspec.json.encode(event).decode()],
            )
        return event_id

    async def deliveries(self, webhook_id: str, **filters: Any) -> list[Any]:
        page = await self.sdk().webhook(webhook_id).deliveries.list(**filters)
        return list(page.data)

    async def settled(self, webhook_id: str, count: int, status: str) -> list[Any]:
        async def check() -> list[Any] | None:
            found = await self.deliveries(webhook_id)
            ok = len(found) == count and all(d.status == status for d in found)
            return found if ok else None

        return await eventually(check, timeout=30)


@pytest_asyncio.fixture
async def tenant(dev: RunningPlatform) -> Tenant:
    account_id, key = await tenants.new_account(dev, "deliveries tenant")
    return Tenant(dev, account_id, key)


def verify(raw_body: bytes, header: str, secret: str, tolerance: int = 300) -> bool:
    """platform.md 7.5's receiver reference logic."""
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    ts = next((v for k, v in parts if k == "t"), None)
    sigs = [v for k, v in parts if k == "v1"]
    if ts is None or not ts.isdigit() or not sigs or abs(time.time() - int(ts)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), ts.encode() + b"." + raw_body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in sigs)


async def test_an_event_is_delivered_signed_and_listed(tenant, receiver, pool) -> None:
    path, url = receiver.url()
    webhook_id, secret = await tenant.webhook(url)
    event_id = await tenant.emit(pool)
    [delivery] = await tenant.settled(webhook_id, 1, "succeeded")
    assert delivery.event_id == event_id and delivery.event_type == "user.created"
    assert delivery.attempt_count == 1 and delivery.attempt_budget == 8
    assert delivery.last_response_status == 200 and delivery.last_error is None
    [(headers, body)] = receiver.received[path]
    assert verify(body, headers["X-Webhook-Signature"], secret)
    assert headers["X-Webhook-Id"] == delivery.id


async def test_a_domain_event_reaches_the_webhook_through_the_audit_log(tenant, receiver) -> None:
    path, url = receiver.url()
    webhook_id, secret = await tenant.webhook(url, events=["issuer.created"])
    issuer = await tenant.sdk().issuers.create({"name": f"hooked-{uuid.uuid4().hex[:6]}"})
    [delivery] = await tenant.settled(webhook_id, 1, "succeeded")
    assert delivery.event_type == "issuer.created"
    [(headers, body)] = receiver.received[path]
    assert verify(body, headers["X-Webhook-Signature"], secret)
    event = msgspec.json.decode(body)["data"]
    assert event["type"] == "issuer.created" and event["id"] == delivery.event_id
    assert event["subject"]["account_id"] == tenant.account_id
    assert issuer.id in msgspec.json.encode(event).decode()


async def test_500_three_times_then_200_is_one_record_with_four_attempts(
    tenant, receiver, pool
) -> None:
    path, url = receiver.url([500, 500, 500, 200])
    webhook_id, _ = await tenant.webhook(url)
    await tenant.emit(pool)
    [delivery] = await tenant.settled(webhook_id, 1, "succeeded")
    assert delivery.attempt_count == 4
    assert [h["X-Webhook-Attempt"] for h, _ in receiver.received[path]] == ["1", "2", "3", "4"]


async def test_list_filters_and_pages(tenant, receiver, pool) -> None:
    _, url = receiver.url()
    webhook_id, _ = await tenant.webhook(url, events=["user.created", "user.deleted"])
    await tenant.emit(pool, "user.created")
    await tenant.emit(pool, "user.deleted")
    found = await tenant.settled(webhook_id, 2, "succeeded")
    [deleted] = await tenant.deliveries(webhook_id, event_type="user.deleted")
    assert deleted.event_type == "user.deleted"
    assert await tenant.deliveries(webhook_id, status="failed") == []
    newest = max(d.created_at for d in found)
    assert len(await tenant.deliveries(webhook_id, after=newest)) == 0
    assert len(await tenant.deliveries(webhook_id, before=newest + 1)) == 2
    first = await tenant.sdk().webhook(webhook_id).deliveries.list(limit=1)
    assert first.has_more and first.next_cursor
    second = (
        await tenant.sdk().webhook(webhook_id).deliveries.list(limit=1, cursor=first.next_cursor)
    )
    assert {first.data[0].id, second.data[0].id} == {d.id for d in found}
    with pytest.raises(ApiError) as bad:
        await tenant.deliveries(webhook_id, status="lost")
    assert bad.value.status_code == 400
    with pytest.raises(ApiError) as missing:
        await tenant.deliveries("wh_" + "0" * 25)
    assert missing.value.status_code == 404


async def test_redeliver_makes_one_attempt_now_outside_the_budget(tenant, receiver, pool) -> None:
    path, url = receiver.url([200, 500])
    webhook_id, secret = await tenant.webhook(url, retry={"max_attempts": 1})
    await tenant.emit(pool)
    [delivery] = await tenant.settled(webhook_id, 1, "succeeded")
    again = await tenant.sdk().webhook(webhook_id).deliveries.redeliver(delivery.id)
    assert again.success is False and again.attempt_count == 2
    assert again.status == "succeeded" and again.last_response_status == 500
    receiver.scripts[path] = [200]
    once_more = await tenant.sdk().webhook(webhook_id).deliveries.redeliver(delivery.id)
    assert once_more.success is True and once_more.attempt_count == 3
    headers = [h for h, _ in receiver.received[path]]
    assert {h["X-Webhook-Id"] for h in headers} == {delivery.id}
    assert [h["X-Webhook-Attempt"] for h in headers] == ["1", "2", "3"]
    assert all(verify(b, h["X-Webhook-Signature"], secret) for h, b in receiver.received[path])
    with pytest.raises(ApiError) as stale:
        await tenant.sdk().webhook(webhook_id).deliveries.redeliver(delivery.id, if_match='"1"')
    assert stale.value.status_code == 412


async def test_bulk_redeliver_requeues_failed_deliveries(tenant, receiver, pool) -> None:
    path, url = receiver.url([503])
    webhook_id, _ = await tenant.webhook(url, retry={"max_attempts": 2})
    await tenant.emit(pool)
    [failed] = await tenant.settled(webhook_id, 1, "failed")
    assert failed.attempt_count == 2 and failed.last_error == "http_503"
    receiver.scripts[path] = [200]
    bulk = tenant.sdk().webhook(webhook_id).redeliver
    window = {"after": failed.created_at - 1000, "before": failed.created_at + 1000}
    assert await bulk.create({**window, "event_types": ["user.deleted"]}) == {"requeued": 0}
    assert await bulk.create(window) == {"requeued": 1}
    [done] = await tenant.settled(webhook_id, 1, "succeeded")
    assert done.id == failed.id and done.attempt_count == 3
    for body, field in (
        ({"after": 0}, "before"),
        ({"before": 1}, "after"),
        ({"after": 0, "before": 8 * 86_400_000}, "before"),
        ({**window, "event_types": ["user.*"]}, "event_types[0]"),
    ):
        with pytest.raises(ValidationError) as bad:
            await bulk.create(body)
        assert bad.value.status_code == 400 and bad.value.fields[0]["field"] == field


async def test_breaker_turns_the_webhook_failing_then_active(tenant, receiver, pool) -> None:
    path, url = receiver.url([500])
    webhook_id, _ = await tenant.webhook(
        url,
        retry={"max_attempts": 20},
        circuit_breaker={"failure_threshold": 3, "probe_interval_seconds": 1},
    )
    await tenant.emit(pool)

    async def status(wanted: str) -> bool:
        return (await tenant.sdk().webhooks.get(webhook_id)).status == wanted

    await eventually(lambda: status("failing"))
    got = await tenant.sdk().webhooks.get(webhook_id)
    assert got.status_by == "system" and got.status_reason == "circuit_open"
    receiver.scripts[path] = [200]
    await eventually(lambda: status("active"))
    await tenant.settled(webhook_id, 1, "succeeded")


async def test_disabling_cancels_pending_deliveries(tenant, receiver, pool) -> None:
    _, url = receiver.url([500])
    webhook_id, _ = await tenant.webhook(url, retry={"max_attempts": 20})
    await tenant.emit(pool)

    async def attempted() -> bool:
        return any(d.attempt_count > 0 for d in await tenant.deliveries(webhook_id))

    await eventually(attempted)
    await tenant.sdk().webhooks.update(webhook_id, {"status": "disabled"})
    [cancelled] = await tenant.settled(webhook_id, 1, "cancelled")
    assert cancelled.next_attempt_at is None
    await tenant.emit(pool)
    await asyncio.sleep(0)  # nothing to wait for: a disabled webhook gets no new records
    with pytest.raises(ApiError) as refused:
        await tenant.sdk().webhook(webhook_id).deliveries.redeliver(cancelled.id)
    assert refused.value.status_code == 409


async def test_redelivery_needs_webhooks_manage(tenant, receiver, pool) -> None:
    _, url = receiver.url()
    webhook_id, _ = await tenant.webhook(url)
    await tenant.emit(pool)
    [delivery] = await tenant.settled(webhook_id, 1, "succeeded")
    directory = part(tenant.platform, "directory")
    made = await directory.create_api_key(
        tenant.account_id, "reader", ["webhooks:read", "webhooks:write"], actor=ADMIN
    )
    await key_ready(tenant.platform, made.key_id, made.secret)
    reader = tenant.sdk((made.key_id, made.secret))
    assert len((await reader.webhook(webhook_id).deliveries.list()).data) == 1
    with pytest.raises(ApiError) as denied:
        await reader.webhook(webhook_id).deliveries.redeliver(delivery.id)
    assert denied.value.status_code == 403


async def test_another_accounts_webhook_has_no_deliveries_to_show(
    tenant, dev, receiver, pool
) -> None:
    _, url = receiver.url()
    webhook_id, _ = await tenant.webhook(url)
    await tenant.emit(pool)
    [delivery] = await tenant.settled(webhook_id, 1, "succeeded")
    account_id, key = await tenants.new_account(dev, "another tenant")
    other = Tenant(dev, account_id, key)
    for call in (
        other.sdk().webhook(webhook_id).deliveries.list(),
        other.sdk().webhook(webhook_id).deliveries.redeliver(delivery.id),
        other.sdk().webhook(webhook_id).redeliver.create({"after": 0, "before": 1}),
    ):
        with pytest.raises(ApiError) as hidden:
            await call
        assert hidden.value.status_code == 404


async def test_down_for_good_then_failing_disabled_and_redelivered_after_reenabling(
    tenant, receiver, pool
) -> None:
    path, url = receiver.url([500])
    webhook_id, secret = await tenant.webhook(
        url,
        retry={"max_attempts": 20},
        circuit_breaker={
            "failure_threshold": 2,
            "probe_interval_seconds": 1,
            "disable_after_seconds": 2,
        },
    )
    await tenant.emit(pool)

    async def status(wanted: str) -> Any:
        got = await tenant.sdk().webhooks.get(webhook_id)
        return got if got.status == wanted else None

    await eventually(lambda: status("failing"))
    disabled = await eventually(lambda: status("disabled"))
    assert disabled.status_by == "system" and disabled.status_reason == "circuit_open_expired"
    [failed] = await tenant.settled(webhook_id, 1, "failed")
    receiver.scripts[path] = [200]
    await tenant.sdk().webhooks.update(webhook_id, {"status": "active"})
    window = {"after": failed.created_at - 1000, "before": failed.created_at + 1000}
    assert await tenant.sdk().webhook(webhook_id).redeliver.create(window) == {"requeued": 1}
    [done] = await tenant.settled(webhook_id, 1, "succeeded")
    headers, body = receiver.received[path][-1]
    assert headers["X-Webhook-Id"] == done.id == failed.id
    assert verify(body, headers["X-Webhook-Signature"], secret)
