"""The delivery engine against real PostgreSQL and a real HTTP receiver on 127.0.0.1: audit-log
rows fan out to deliveries, the dispatcher attempts them, retries, breaks the circuit, probes,
cancels, and survives being stopped with attempts in flight.

The webhooks themselves come from `Webhooks`, a stand-in of the registration's view with the
same interface (targets, credentials, the breaker's three status changes, NOTIFY on change)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest_asyncio
from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from authpi.config import Settings
from authpi.crypto.clock import SystemClock
from authpi.crypto.ids import RandomIds
from authpi.embedded.servers import free_port
from authpi.eventstore.migrations import migrate
from authpi.eventstore.sqltext import render
from authpi.testing.infra import Infra
from authpi.testing.plugin import eventually
from authpi.webhook.delivery.dispatcher import Dispatcher
from authpi.webhook.delivery.fanout import FanOut
from authpi.webhook.delivery.registry import Conn, Credentials, Target
from authpi.webhook.delivery.sender import Sender, address_guard
from authpi.webhook.delivery.store import Store
from authpi.webhook.service import MIGRATIONS

SECRET = "whs_" + "A" * 43
ACCOUNT = "acc_" + "a" * 25
OTHER = "acc_" + "b" * 25


# -- a receiver -------------------------------------------------------------------------------


@dataclass
class Endpoint:
    """What one path answers: a script of statuses (the last one repeats), or silence."""

    statuses: list[int] = field(default_factory=lambda: [200])
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def status(self) -> int:
        n = len(self.received)
        return self.statuses[min(n - 1, len(self.statuses) - 1)]


class Receiver:
    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self.port = 0

    def url(self, path: str, **kw: Any) -> str:
        self.endpoints[path] = Endpoint(**kw)
        return f"http://127.0.0.1:{self.port}/{path}"

    async def handle(self, request: web.Request) -> web.Response:
        ep = self.endpoints[request.match_info["path"]]
        if ep.statuses[0] in (301, 302, 307, 308):
            ep.received.append((dict(request.headers), await request.read()))
            raise web.HTTPFound(f"http://127.0.0.1:{self.port}/elsewhere")
        body = await request.read()
        ep.received.append((dict(request.headers), body))
        started = time.monotonic()
        while time.monotonic() - started < ep.delay:  # a test may cut the delay short
            await asyncio.sleep(0.05)
        return web.Response(status=ep.status(), text="ok", headers=ep.headers)


@pytest_asyncio.fixture
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


def verify(raw_body: bytes, header: str, secret: str, tolerance: int = 300) -> bool:
    """platform.md 7.5's receiver reference logic, as written there."""
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    ts = next((v for k, v in parts if k == "t"), None)
    sigs = [v for k, v in parts if k == "v1"]
    if ts is None or not ts.isdigit() or not sigs or abs(time.time() - int(ts)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), ts.encode() + b"." + raw_body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in sigs)


# -- webhooks ---------------------------------------------------------------------------------


class Webhooks:
    """The registration's side of the interface, kept in memory; changes NOTIFY like its view."""

    def __init__(self, pool: AsyncConnectionPool, schema: str) -> None:
        self.pool = pool
        self.schema = schema
        self.by_id: dict[str, Target] = {}
        self.calls: list[tuple[str, str]] = []
        self._ids = itertools.count()

    async def add(self, url: str, account_id: str = ACCOUNT, **kw: Any) -> Target:
        fields: dict[str, Any] = {
            "id": f"wh_{uuid.uuid4().hex[:20]}",
            "account_id": account_id,
            "url": url,
            "status": "active",
            "auth_type": "signature",
            "events": None,
            "subjects": None,
            "max_attempts": 8,
            "failure_threshold": 20,
            "probe_interval_seconds": 900,
            "disable_after_seconds": 259200,
            **kw,
        }
        target = msgspec.convert(fields, Target)
        self.by_id[target.id] = target
        await self._notify(target.id)
        return target

    async def set_status(self, webhook_id: str, status: str) -> None:
        self.by_id[webhook_id] = msgspec.structs.replace(self.by_id[webhook_id], status=status)
        await self._notify(webhook_id)

    async def _notify(self, webhook_id: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("SELECT pg_notify(%s, %s)", [f"{self.schema}_webhooks", webhook_id])
            await conn.commit()

    async def targets(self, conn: Conn) -> list[Target]:
        return [t for t in self.by_id.values() if t.status != "deleted"]

    async def target(self, conn: Conn, webhook_id: str) -> Target | None:
        return self.by_id.get(webhook_id)

    async def credentials(self, conn: Conn, webhook_id: str, now_ms: int) -> Credentials:
        return Credentials(signature_secrets=[SECRET], bearer_token=None)

    async def _move(self, name: str, webhook_id: str, frm: str, to: str) -> None:
        self.calls.append((name, webhook_id))
        if self.by_id[webhook_id].status == frm:
            await self.set_status(webhook_id, to)

    async def open_circuit(self, account_id: str, webhook_id: str) -> None:
        await self._move("open_circuit", webhook_id, "active", "failing")

    async def close_circuit(self, account_id: str, webhook_id: str) -> None:
        await self._move("close_circuit", webhook_id, "failing", "active")

    async def disable_failing(self, account_id: str, webhook_id: str) -> None:
        await self._move("disable_failing", webhook_id, "failing", "disabled")


# -- the engine -------------------------------------------------------------------------------


class Engine:
    def __init__(self, infra: Infra, pool: AsyncConnectionPool, schema: str) -> None:
        self.infra = infra
        self.pool = pool
        self.schema = schema
        self.webhooks = Webhooks(pool, schema)
        self.clock = SystemClock()
        self.seq = itertools.count(1)

    def fanout(self) -> FanOut:
        return FanOut(
            self.infra.dsn, self.schema, self.webhooks, self.clock, RandomIds(), poll_interval=0.2
        )

    def dispatcher(
        self,
        *,
        allow_private: bool = True,
        timeout_s: float = 5.0,
        delays: tuple[int, ...] = (0,),
        per_webhook: int = 4,
        total: int = 64,
    ) -> Dispatcher:
        policy = Settings(
            data_dir=Path("/nonexistent"),
            webhooks_allow_insecure=True,
            webhooks_allow_private=allow_private,
        )
        sender = Sender(address_guard(policy), timeout_s=timeout_s)
        return Dispatcher(
            self.infra.dsn,
            self.schema,
            self.webhooks,
            sender,
            self.clock,
            delays=delays,
            per_webhook=per_webhook,
            total=total,
            poll_interval=0.2,
            jitter=lambda: 0.0,
        )

    async def emit(
        self, event_type: str = "user.created", account_id: str = ACCOUNT, **subject: str
    ) -> str:
        event_id = f"evt_{uuid.uuid4().hex[:26].upper()}"
        now = int(time.time() * 1000)
        event = {
            "spec": "1",
            "id": event_id,
            "type": event_type,
            "source": "com.authpi/v1",
            "subject": {"account_id": account_id, **subject},
            "timestamp": now,
            "data": {"n": next(self.seq)},
        }
        async with self.pool.connection() as conn:
            await conn.execute(
                render(
                    "INSERT INTO {schema}.audit_events (id, account_id, type, occurred_at, event)"
                    " VALUES (%s, %s, %s, %s, %s::jsonb)",
                    schema=self.schema,
                ),
                [event_id, account_id, event_type, now, msgspec.json.encode(event).decode()],
            )
            await conn.commit()
        return event_id

    async def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(render(sql, schema=self.schema), list(args))
            rows = await cur.fetchall() if cur.description else []
            await conn.commit()
            return rows

    async def deliveries(self, webhook_id: str) -> list[dict[str, Any]]:
        cols = (
            "id",
            "event_id",
            "status",
            "attempt_count",
            "held",
            "last_error",
            "last_response_status",
            "next_attempt_at",
        )
        rows = await self.rows(
            "SELECT " + ", ".join(cols) + " FROM {schema}.deliveries WHERE webhook_id = %s"
            " ORDER BY seq",
            webhook_id,
        )
        return [dict(zip(cols, r, strict=True)) for r in rows]

    async def attempts(self, delivery_id: str) -> list[tuple[Any, ...]]:
        return await self.rows(
            "SELECT attempt, success, response_status, error, response_body"
            " FROM {schema}.delivery_attempts WHERE delivery_id = %s ORDER BY attempt",
            delivery_id,
        )

    async def settled(self, webhook_id: str, count: int, status: str) -> list[dict[str, Any]]:
        async def check() -> list[dict[str, Any]] | None:
            found = await self.deliveries(webhook_id)
            done = [d for d in found if d["status"] == status]
            return found if len(found) == count and len(done) == count else None

        return await eventually(check, timeout=30)


@pytest_asyncio.fixture
async def engine(infra: Infra, pool: AsyncConnectionPool, namespace: str) -> Engine:
    schema = f"{namespace}_webhook"
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        await migrate(conn, schema, MIGRATIONS)
    return Engine(infra, pool, schema)


@contextlib.asynccontextmanager
async def running(*runners: Any) -> AsyncIterator[None]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(r.run(stop)) for r in runners]
    try:
        await asyncio.wait_for(asyncio.gather(*(r.running.wait() for r in runners)), 30)
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


# -- tests ------------------------------------------------------------------------------------


async def test_event_is_delivered_signed_once_per_webhook(
    engine: Engine, receiver: Receiver
) -> None:
    hook = await engine.webhooks.add(receiver.url("ok"))
    async with running(engine.fanout(), engine.dispatcher()):
        event_id = await engine.emit(issuer_id="i_1")
        [delivery] = await engine.settled(hook.id, 1, "succeeded")
    [(headers, body)] = receiver.endpoints["ok"].received
    assert verify(body, headers["X-Webhook-Signature"], SECRET)
    assert headers["X-Webhook-Id"] == delivery["id"] and delivery["id"].startswith("dlv_")
    assert headers["X-Webhook-Event-Id"] == event_id
    assert headers["X-Webhook-Event-Type"] == "user.created"
    assert headers["X-Webhook-Attempt"] == "1"
    assert headers["User-Agent"] == "AuthPI-Webhooks/1.0"
    envelope = msgspec.json.decode(body)
    assert envelope["id"] == delivery["id"] and envelope["specversion"] == "1.0"
    assert envelope["source"] == f"com.authpi.webhooks/v1/{hook.id}"
    assert envelope["data"]["id"] == event_id
    assert envelope["data"]["subject"] == {"account_id": ACCOUNT, "issuer_id": "i_1"}
    assert [a[:3] for a in await engine.attempts(delivery["id"])] == [(1, True, 200)]


async def test_500_three_times_then_200_is_one_delivery_with_four_attempts(
    engine: Engine, receiver: Receiver
) -> None:
    hook = await engine.webhooks.add(receiver.url("flaky", statuses=[500, 500, 500, 200]))
    async with running(engine.fanout(), engine.dispatcher()):
        await engine.emit()
        [delivery] = await engine.settled(hook.id, 1, "succeeded")
    assert delivery["attempt_count"] == 4
    attempts = await engine.attempts(delivery["id"])
    assert [(a[0], a[1], a[2], a[3]) for a in attempts] == [
        (1, False, 500, "http_500"),
        (2, False, 500, "http_500"),
        (3, False, 500, "http_500"),
        (4, True, 200, None),
    ]
    assert attempts[0][4] == "ok"  # the response body is kept
    received = receiver.endpoints["flaky"].received
    assert [h["X-Webhook-Attempt"] for h, _ in received] == ["1", "2", "3", "4"]
    assert {h["X-Webhook-Id"] for h, _ in received} == {delivery["id"]}  # stable across retries


async def test_budget_exhausted_leaves_the_delivery_failed(
    engine: Engine, receiver: Receiver
) -> None:
    hook = await engine.webhooks.add(receiver.url("down", statuses=[503]), max_attempts=3)
    async with running(engine.fanout(), engine.dispatcher()):
        await engine.emit()
        [delivery] = await engine.settled(hook.id, 1, "failed")
    assert delivery["attempt_count"] == 3 and delivery["last_error"] == "http_503"
    assert delivery["last_response_status"] == 503 and delivery["next_attempt_at"] is None


async def test_retry_after_on_503_postpones_the_next_attempt(
    engine: Engine, receiver: Receiver
) -> None:
    url = receiver.url("busy", statuses=[503], headers={"Retry-After": "3600"})
    hook = await engine.webhooks.add(url)
    async with running(engine.fanout(), engine.dispatcher(delays=(1,))):
        await engine.emit()
        [delivery] = await eventually(lambda: _attempted_list(engine, hook.id))
    assert delivery["status"] == "pending" and delivery["attempt_count"] == 1
    wait_ms = delivery["next_attempt_at"] - int(time.time() * 1000)
    assert 3_500_000 < wait_ms <= 3_600_000


async def _attempted_list(engine: Engine, webhook_id: str) -> list[dict[str, Any]] | None:
    found = await engine.deliveries(webhook_id)
    return found if found and found[0]["attempt_count"] > 0 else None


async def test_a_slow_endpoint_times_out(engine: Engine, receiver: Receiver) -> None:
    hook = await engine.webhooks.add(receiver.url("slow", delay=3.0), max_attempts=1)
    async with running(engine.fanout(), engine.dispatcher(timeout_s=0.3)):
        await engine.emit()
        [delivery] = await engine.settled(hook.id, 1, "failed")
    assert delivery["last_error"] == "timeout" and delivery["last_response_status"] is None


async def test_a_redirect_is_a_failed_attempt_and_not_followed(
    engine: Engine, receiver: Receiver
) -> None:
    elsewhere = receiver.url("elsewhere")
    hook = await engine.webhooks.add(receiver.url("moved", statuses=[302]), max_attempts=1)
    async with running(engine.fanout(), engine.dispatcher()):
        await engine.emit()
        [delivery] = await engine.settled(hook.id, 1, "failed")
    assert delivery["last_error"] == "http_302" and delivery["last_response_status"] == 302
    assert len(receiver.endpoints["moved"].received) == 1
    assert receiver.endpoints["elsewhere"].received == [] and elsewhere


async def test_connection_refused_is_a_connect_error(engine: Engine, receiver: Receiver) -> None:
    closed = f"http://127.0.0.1:{free_port()}/nothing"
    hook = await engine.webhooks.add(closed, max_attempts=2)
    async with running(engine.fanout(), engine.dispatcher()):
        await engine.emit()
        [delivery] = await engine.settled(hook.id, 1, "failed")
    assert delivery["last_error"] == "connect_error" and delivery["attempt_count"] == 2


async def test_a_forbidden_address_is_never_connected_to(
    engine: Engine, receiver: Receiver
) -> None:
    literal = await engine.webhooks.add(receiver.url("private"), max_attempts=1)
    named = await engine.webhooks.add(f"http://localhost:{receiver.port}/private", max_attempts=1)
    async with running(engine.fanout(), engine.dispatcher(allow_private=False)):
        await engine.emit()
        [a] = await engine.settled(literal.id, 1, "failed")
        [b] = await engine.settled(named.id, 1, "failed")
    assert a["last_error"] == b["last_error"] == "forbidden_address"
    assert receiver.endpoints["private"].received == []


async def test_fanout_matches_filters_and_accounts_and_never_duplicates(
    engine: Engine, receiver: Receiver
) -> None:
    every = await engine.webhooks.add(receiver.url("every"))
    typed = await engine.webhooks.add(receiver.url("typed"), events=["user.deleted"])
    subject = await engine.webhooks.add(receiver.url("subject"), subjects=[{"issuer_id": "i_2"}])
    other = await engine.webhooks.add(receiver.url("other"), account_id=OTHER)
    disabled = await engine.webhooks.add(receiver.url("disabled"), status="disabled")
    async with running(engine.fanout(), engine.dispatcher()):
        await engine.emit("user.created", issuer_id="i_1")
        await engine.emit("user.deleted", issuer_id="i_2")
        await engine.settled(every.id, 2, "succeeded")
        await engine.settled(typed.id, 1, "succeeded")
        await engine.settled(subject.id, 1, "succeeded")
    assert await engine.deliveries(other.id) == []
    assert await engine.deliveries(disabled.id) == []
    # The fan-out reads the whole log again: UNIQUE (webhook_id, event_id) creates nothing.
    await engine.rows("UPDATE {schema}.audit_cursors SET tx_id = '0', seq = 0")
    again = engine.fanout()
    async with running(again):
        await eventually(lambda: _cursor_moved(engine))
    assert again.created == 0
    assert len(await engine.deliveries(every.id)) == 2
    events = [
        msgspec.json.decode(b)["data"]["type"] for _, b in receiver.endpoints["every"].received
    ]
    assert events == ["user.created", "user.deleted"]  # in event order


async def _cursor_moved(engine: Engine) -> bool:
    [(seq,)] = await engine.rows("SELECT seq FROM {schema}.audit_cursors")
    return seq > 0


async def test_breaker_opens_holds_probes_and_closes(engine: Engine, receiver: Receiver) -> None:
    ep_url = receiver.url("breaker", statuses=[500])
    hook = await engine.webhooks.add(
        ep_url, failure_threshold=3, probe_interval_seconds=1, max_attempts=20
    )
    async with running(engine.fanout(), engine.dispatcher(delays=(0,), per_webhook=1)):
        await engine.emit()
        await eventually(lambda: _status(engine, hook.id, "failing"))
        assert ("open_circuit", hook.id) in engine.webhooks.calls
        # While failing, new deliveries are created held and not attempted.
        for _ in range(3):
            await engine.emit()
        found = await eventually(lambda: _count(engine, hook.id, 4))
        assert all(d["held"] for d in found if d["status"] == "pending")
        receiver.endpoints["breaker"].statuses = [200]
        await engine.settled(hook.id, 4, "succeeded")
    assert ("close_circuit", hook.id) in engine.webhooks.calls
    assert engine.webhooks.by_id[hook.id].status == "active"
    received = [
        msgspec.json.decode(b)["data"]["data"]["n"]
        for _, b in receiver.endpoints["breaker"].received
    ]
    # The probe took the oldest held delivery; its success released the others in event order.
    assert received[-4:] == [1, 2, 3, 4]


async def test_failing_too_long_disables_and_fails_held(engine: Engine, receiver: Receiver) -> None:
    hook = await engine.webhooks.add(
        receiver.url("dead", statuses=[500]),
        failure_threshold=2,
        probe_interval_seconds=60,
        disable_after_seconds=1,
        max_attempts=20,
    )
    async with running(engine.fanout(), engine.dispatcher(delays=(0,), per_webhook=1)):
        await engine.emit()
        await engine.emit()
        await eventually(lambda: _status(engine, hook.id, "disabled"))
        await engine.settled(hook.id, 2, "failed")
    assert [c for c, _ in engine.webhooks.calls] == ["open_circuit", "disable_failing"]


async def test_disabling_a_webhook_cancels_its_pending_deliveries(
    engine: Engine, receiver: Receiver
) -> None:
    hook = await engine.webhooks.add(receiver.url("paused", statuses=[500]), max_attempts=20)
    async with running(engine.fanout(), engine.dispatcher(delays=(3600,))):
        await engine.emit()
        await eventually(lambda: _attempted(engine, hook.id))
        await engine.webhooks.set_status(hook.id, "disabled")
        [delivery] = await engine.settled(hook.id, 1, "cancelled")
    assert delivery["next_attempt_at"] is None


async def test_stopped_with_attempts_in_flight_the_next_dispatcher_makes_them_again(
    engine: Engine, receiver: Receiver
) -> None:
    hook = await engine.webhooks.add(receiver.url("hang", delay=30.0))
    async with running(engine.fanout(), engine.dispatcher()):
        for _ in range(3):
            await engine.emit()
        await eventually(lambda: _received(receiver, "hang", 3))
    # Stopped mid-attempt: nothing was recorded, the claims are left behind.
    found = await engine.deliveries(hook.id)
    assert [d["status"] for d in found] == ["pending"] * 3
    receiver.endpoints["hang"].delay = 0.0
    async with running(engine.fanout(), engine.dispatcher()):
        done = await engine.settled(hook.id, 3, "succeeded")
    ids = [h["X-Webhook-Id"] for h, _ in receiver.endpoints["hang"].received]
    assert len(ids) == 6 and set(ids) == {d["id"] for d in done}
    assert len(await engine.deliveries(hook.id)) == 3


async def _status(engine: Engine, webhook_id: str, status: str) -> bool:
    return engine.webhooks.by_id[webhook_id].status == status


async def _count(engine: Engine, webhook_id: str, n: int) -> list[dict[str, Any]] | None:
    found = await engine.deliveries(webhook_id)
    return found if len(found) == n else None


async def _attempted(engine: Engine, webhook_id: str) -> bool:
    return any(d["attempt_count"] > 0 for d in await engine.deliveries(webhook_id))


async def _received(receiver: Receiver, path: str, n: int) -> bool:
    return len(receiver.endpoints[path].received) >= n


async def test_response_bodies_are_forgotten_after_their_retention(
    engine: Engine, receiver: Receiver
) -> None:
    hook = await engine.webhooks.add(receiver.url("kept"))
    async with running(engine.fanout(), engine.dispatcher()):
        await engine.emit()
        [delivery] = await engine.settled(hook.id, 1, "succeeded")
    [(_, _, _, _, body)] = await engine.attempts(delivery["id"])
    assert body == "ok"
    store = Store(engine.schema)
    async with engine.pool.connection() as conn:
        assert await store.forget_bodies(conn, int(time.time() * 1000) - 86_400_000) == 0
        assert await store.forget_bodies(conn, int(time.time() * 1000) + 1) == 1
    [(_, success, status, _, body)] = await engine.attempts(delivery["id"])
    assert (success, status, body) == (True, 200, None)
