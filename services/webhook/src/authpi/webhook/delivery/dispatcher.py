"""The dispatcher (platform.md 7.6, 7.7, 7.10): one per deployment (a session advisory lock).
It claims due deliveries in (due time, event order), runs their attempts with a bound per webhook
and one overall, so a slow or blackholed endpoint holds only its own slots and never delays the
others, writes the outcomes in batches, and drives the circuit breaker.

Woken by NOTIFY on new or requeued deliveries (`<schema>_deliveries`), on webhook changes
(`<schema>_webhooks`: disabled or deleted -> pending deliveries cancelled; back to active ->
held deliveries released), by a finished attempt freeing a slot, and by the next due time.

Crash safety: a claim is only a flag. The next dispatcher clears every claim at start, so an
attempt whose outcome was never written is simply made again; the delivery record itself is
never created twice (the fan-out's UNIQUE (webhook_id, event_id))."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import defaultdict, deque
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, LiteralString

import msgspec
import psycopg
from psycopg_pool import AsyncConnectionPool

from authpi.crypto.clock import Clock
from authpi.eventstore.locks import acquire
from authpi.eventstore.sqltext import render
from authpi.observability import get_logger
from authpi.webhook.delivery.registry import Credentials, Registry, Target
from authpi.webhook.delivery.sender import Attempt, Sender
from authpi.webhook.delivery.store import Claimed, Result, Store
from authpi.webhook.domain.delivery import (
    DEFAULT_DELAYS,
    DELIVERABLE,
    Circuit,
    Outcome,
    after_attempt,
    expired,
    on_attempt,
    probe_due,
)

log = get_logger("authpi.webhook.dispatcher")

CREDENTIALS_TTL_MS = 60_000  # a rotated-out secret stops signing within a minute of its expiry
BODY_RETENTION_MS = 30 * 86_400_000  # response bodies are kept 30 days (platform.md 7.8)
SWEEP_INTERVAL_MS = 3_600_000


class Dispatcher:
    def __init__(
        self,
        dsn: str,
        schema: str,
        registry: Registry,
        sender: Sender,
        clock: Clock,
        *,
        delays: Sequence[int] = DEFAULT_DELAYS,
        per_webhook: int = 16,
        total: int = 512,
        batch_size: int = 500,
        flush_interval: float = 0.01,
        poll_interval: float = 1.0,
        jitter: Callable[[], float] = lambda: random.uniform(-0.1, 0.1),
    ) -> None:
        self.dsn = dsn
        self.schema = schema
        self.registry = registry
        self.sender = sender
        self.clock = clock
        self.delays = tuple(delays)
        self.per_webhook = per_webhook
        # Claimed per webhook ahead of its free slots, so that claims come in batches; a
        # webhook is claimed for again once it has drained to half of this.
        self.prefetch = per_webhook * 4
        self.total = total
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.poll_interval = poll_interval
        self.jitter = jitter
        self.store = Store(schema)
        self.running = asyncio.Event()
        self.attempts = 0  # attempts finished by this process (observability, tests)

        self._reset()
        self._pool: AsyncConnectionPool | None = None
        self._listen_sql: list[LiteralString] = [
            render("LISTEN {c}", c=f"{schema}_deliveries"),
            render("LISTEN {c}", c=f"{schema}_webhooks"),
        ]
        self._webhooks_channel = f"{schema}_webhooks"

    def _reset(self) -> None:
        """The state of one run: a run that failed and is started again begins from scratch
        (its claims are recovered from the table, its outcomes not yet written are redone)."""
        self._targets: dict[str, Target] = {}
        self._credentials: dict[str, tuple[Credentials, int]] = {}
        self._circuits: dict[str, Circuit] = {}
        self._dirty_circuits: set[str] = set()
        self._probing: set[str] = set()
        self._inflight: dict[str, int] = defaultdict(int)
        self._queued: dict[str, deque[Claimed]] = defaultdict(deque)
        self._busy = 0  # attempts in flight plus claimed ones waiting for a slot
        self._results: list[Result] = []
        self._wake = asyncio.Event()
        self._results_ready = asyncio.Event()
        self._changes: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    @property
    def pool(self) -> AsyncConnectionPool:
        assert self._pool is not None
        return self._pool

    async def run(self, stop: asyncio.Event) -> None:
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as listen:
            if not await acquire(listen, f"authpi.dispatcher:{self.schema}", stop=stop):
                return
            self._reset()
            for sql in self._listen_sql:
                await listen.execute(sql)
            self._pool = AsyncConnectionPool(
                self.dsn, min_size=2, max_size=6, open=False, kwargs={"autocommit": True}
            )
            await self._pool.open(wait=True)
            try:
                await self._start()
                helpers = [
                    asyncio.create_task(self._listen(listen)),
                    asyncio.create_task(self._flusher(stop)),
                    asyncio.create_task(self._changes_loop()),
                    asyncio.create_task(self._breaker_loop(stop)),
                ]
                self.running.set()
                log.info("dispatcher.started", schema=self.schema)
                try:
                    await self._claim_loop(stop, helpers)
                finally:
                    for t in [*helpers, *self._tasks]:
                        t.cancel()
                    for t in [*helpers, *self._tasks]:
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await t
                    await self._flush()  # outcomes already known are written, not redone
            finally:
                await self.sender.close()
                await self._pool.close()
                self._pool = None

    async def _start(self) -> None:
        async with self.pool.connection() as conn:
            recovered = await self.store.recover(conn)
            targets = await self.registry.targets(conn)
            self._circuits = await self.store.circuits(conn)
        if recovered:
            log.info("dispatcher.claims_recovered", count=recovered)
        now = self.clock.now_ms()
        for t in targets:
            await self._apply_target(t.id, t, None, now)

    # -- claims -------------------------------------------------------------------------------

    def _skipped(self) -> list[str]:
        """Webhooks not to claim for: their slots are full, or their circuit is open."""
        skip = {w for w, c in self._circuits.items() if c.open}
        for w in set(self._inflight) | set(self._queued):
            if self._held_by(w) > self.prefetch // 2:
                skip.add(w)
        return sorted(skip)

    async def _claim_loop(self, stop: asyncio.Event, helpers: list[asyncio.Task[Any]]) -> None:
        while not stop.is_set():
            for h in helpers:
                if h.done():
                    h.result()  # a helper died: fail, and be restarted
            self._wake.clear()
            room = min(self.total - self._busy, self.batch_size)
            claimed: list[Claimed] = []
            skip = self._skipped()
            if room > 0:
                async with self.pool.connection() as conn:
                    claimed = await self.store.claim(
                        conn, self.clock.now_ms(), skip, self.prefetch, room
                    )
                await self._dispatch(claimed)
            if claimed and len(claimed) == room:
                continue
            timeout = self.poll_interval
            if room > 0:
                async with self.pool.connection() as conn:
                    due = await self.store.next_due(conn, self._skipped())
                if due is not None:
                    timeout = min(timeout, max(0.0, (due - self.clock.now_ms()) / 1000))
            if timeout > 0:
                await _wait(self._wake, stop, timeout)
            await asyncio.sleep(0.002)  # let a burst of wake-ups become one claim

    async def _dispatch(self, claimed: list[Claimed]) -> None:
        unknown = {c.webhook_id for c in claimed if c.webhook_id not in self._targets}
        for webhook_id in unknown:
            await self._refresh(webhook_id)
        to_hold: list[str] = []
        for c in claimed:
            target = self._targets.get(c.webhook_id)
            if target is None or target.status not in DELIVERABLE:
                continue  # cancelled by _refresh / _apply_target
            if self._circuits.get(c.webhook_id, Circuit()).open:
                to_hold.append(c.id)
                continue
            self._queued[c.webhook_id].append(c)
            self._busy += 1
        if to_hold:
            async with self.pool.connection() as conn:
                await self.store.unclaim(conn, to_hold, hold=True)
        for webhook_id in {c.webhook_id for c in claimed}:
            self._pump(webhook_id)

    def _pump(self, webhook_id: str) -> None:
        queue = self._queued.get(webhook_id)
        while queue and self._inflight.get(webhook_id, 0) < self.per_webhook:
            c = queue.popleft()
            self._inflight[webhook_id] += 1
            self._spawn(self._attempt(c, probe=False))
        if queue is not None and not queue:
            del self._queued[webhook_id]

    def _held_by(self, webhook_id: str) -> int:
        return self._inflight.get(webhook_id, 0) + len(self._queued.get(webhook_id, ()))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # A breaker transition that failed is tried again: the next attempt's outcome or
            # probe decides anew; an attempt's outcome that was not written is made again.
            log.error("dispatcher.task_failed", exc_info=task.exception())

    # -- attempts -----------------------------------------------------------------------------

    async def _attempt(self, c: Claimed, *, probe: bool) -> None:
        webhook_id = c.webhook_id
        try:
            target = self._targets.get(webhook_id)
            if target is None or c.event is None:
                outcome = Outcome(success=False, error="event_unavailable")
                if target is None:
                    return
            else:
                creds = await self._creds(webhook_id)
                attempt = Attempt(
                    delivery_id=c.id,
                    event_id=c.event_id,
                    event_type=c.event_type,
                    occurred_at=c.occurred_at,
                    event=c.event,
                    attempt=c.attempt_count + 1,
                )
                outcome = await self.sender.send(target, creds, attempt)
            self._record(c, target, outcome)
        finally:
            self._inflight[webhook_id] -= 1
            if self._inflight[webhook_id] <= 0:
                del self._inflight[webhook_id]
            if probe:
                self._probing.discard(webhook_id)
            else:
                self._busy -= 1
                self._pump(webhook_id)
            if self._held_by(webhook_id) == self.prefetch // 2 or self._busy == 0:
                self._wake.set()  # drained to the low-water mark: claim for it again

    def _record(self, c: Claimed, target: Target, outcome: Outcome) -> None:
        now = self.clock.now_ms()
        self.attempts += 1
        circuit, action = on_attempt(
            self._circuits.get(target.id, Circuit()),
            outcome.success,
            target.failure_threshold,
            target.probe_interval_seconds * 1000,
            now,
        )
        self._set_circuit(target.id, circuit)
        nxt = after_attempt(
            outcome, c.scheduled_attempts + 1, c.attempt_budget, now, self.delays, self.jitter()
        )
        self._results.append(
            Result(
                id=c.id,
                attempted_at=now - outcome.duration_ms,
                duration_ms=outcome.duration_ms,
                success=outcome.success,
                response_status=outcome.response_status,
                error=outcome.error,
                response_body=outcome.response_body,
                status=nxt.status,
                next_attempt_at=nxt.next_attempt_at,
                hold=circuit.open,
            )
        )
        self._results_ready.set()
        if action == "open":
            log.info("webhook.circuit_opened", webhook_id=target.id, failures=circuit.failures)
            self._spawn(self._open(target))
        elif action == "close":
            log.info("webhook.circuit_closed", webhook_id=target.id)
            self._spawn(self._close(target))

    async def _creds(self, webhook_id: str) -> Credentials:
        now = self.clock.now_ms()
        cached = self._credentials.get(webhook_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        async with self.pool.connection() as conn:
            creds = await self.registry.credentials(conn, webhook_id, now)
        self._credentials[webhook_id] = (creds, now + CREDENTIALS_TTL_MS)
        return creds

    # -- batched writes -----------------------------------------------------------------------

    async def _flusher(self, stop: asyncio.Event) -> None:
        while True:
            await self._results_ready.wait()
            await asyncio.sleep(self.flush_interval)  # gather a batch
            await self._flush()

    async def _flush(self) -> None:
        self._results_ready.clear()
        results, self._results = self._results, []
        dirty = {w: self._circuits.get(w, Circuit()) for w in self._dirty_circuits}
        self._dirty_circuits.clear()
        if not results and not dirty:
            return
        try:
            async with self.pool.connection() as conn, conn.transaction():
                if results:
                    await self.store.write(conn, results)
                await self.store.save_circuits(conn, dirty)
        except Exception:
            # Written on the next flush; meanwhile the claims stay, so nothing is attempted twice.
            self._results = results + self._results
            self._dirty_circuits.update(dirty)
            self._results_ready.set()
            raise

    def _set_circuit(self, webhook_id: str, circuit: Circuit) -> None:
        if self._circuits.get(webhook_id, Circuit()) != circuit:
            self._circuits[webhook_id] = circuit
            self._dirty_circuits.add(webhook_id)

    # -- the circuit breaker (7.7) ------------------------------------------------------------

    async def _open(self, target: Target) -> None:
        async with self._locks[target.id]:
            async with self.pool.connection() as conn:
                await self.store.hold(conn, target.id)
            await self.registry.open_circuit(target.account_id, target.id)

    async def _close(self, target: Target) -> None:
        async with self._locks[target.id]:
            await self.registry.close_circuit(target.account_id, target.id)
            async with self.pool.connection() as conn:
                await self.store.release(conn, target.id, self.clock.now_ms())
        self._wake.set()

    async def _breaker_loop(self, stop: asyncio.Event) -> None:
        swept_at = 0
        while not stop.is_set():
            now = self.clock.now_ms()
            if now - swept_at >= SWEEP_INTERVAL_MS:
                swept_at = now
                async with self.pool.connection() as conn:
                    while await self.store.forget_bodies(conn, now - BODY_RETENTION_MS):
                        pass
            for webhook_id, circuit in list(self._circuits.items()):
                target = self._targets.get(webhook_id)
                if target is None or not circuit.open:
                    continue
                if target.status != "failing":
                    # Opened here, but the webhook never became failing (the transition
                    # failed): open it again; nothing is failed for a webhook still active.
                    if circuit.opened_at is not None and now - circuit.opened_at > 5_000:
                        self._spawn(self._open(target))
                        self._set_circuit(
                            webhook_id, msgspec.structs.replace(circuit, opened_at=now)
                        )
                elif expired(circuit, target.disable_after_seconds * 1000, now):
                    await self._expire(target)
                elif probe_due(circuit, now) and webhook_id not in self._probing:
                    await self._probe(target, circuit, now)
            await _wait(asyncio.Event(), stop, min(self.poll_interval, 0.25))

    async def _probe(self, target: Target, circuit: Circuit, now: int) -> None:
        self._set_circuit(
            target.id,
            Circuit(
                failures=circuit.failures,
                opened_at=circuit.opened_at,
                probe_at=now + target.probe_interval_seconds * 1000,
            ),
        )
        async with self.pool.connection() as conn:
            await self.store.hold(conn, target.id)  # any straggler created before the open
            c = await self.store.claim_probe(conn, target.id)
        if c is None:
            return
        log.info("webhook.circuit_probe", webhook_id=target.id, delivery_id=c.id)
        self._probing.add(target.id)
        self._inflight[target.id] += 1
        self._spawn(self._attempt(c, probe=True))

    async def _expire(self, target: Target) -> None:
        """Failing longer than `disable_after_seconds`: held deliveries fail, and the system
        disables the webhook (`status_reason: circuit_open_expired`)."""
        log.info("webhook.circuit_expired", webhook_id=target.id)
        async with self._locks[target.id]:
            async with self.pool.connection() as conn:
                await self.store.end(
                    conn, target.id, "failed", self.clock.now_ms(), error="circuit_open_expired"
                )
            self._set_circuit(target.id, Circuit())
            self._circuits.pop(target.id, None)
            await self.registry.disable_failing(target.account_id, target.id)

    # -- webhook changes ----------------------------------------------------------------------

    async def _listen(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async for n in conn.notifies():
            if n.channel == self._webhooks_channel:
                await self._changes.put(n.payload)
            else:
                self._wake.set()

    async def _changes_loop(self) -> None:
        while True:
            webhook_id = await self._changes.get()
            if webhook_id:
                await self._refresh(webhook_id)
            else:  # no id: look at every webhook
                async with self.pool.connection() as conn:
                    targets = await self.registry.targets(conn)
                for t in targets:
                    await self._apply_target(t.id, t, self._targets.get(t.id), self.clock.now_ms())

    async def _refresh(self, webhook_id: str) -> None:
        async with self.pool.connection() as conn:
            target = await self.registry.target(conn, webhook_id)
        await self._apply_target(
            webhook_id, target, self._targets.get(webhook_id), self.clock.now_ms()
        )

    async def _apply_target(
        self, webhook_id: str, target: Target | None, old: Target | None, now: int
    ) -> None:
        self._credentials.pop(webhook_id, None)
        async with self._locks[webhook_id]:
            if target is None or target.status not in DELIVERABLE:
                self._targets.pop(webhook_id, None)
                if self._circuits.pop(webhook_id, None) is not None:
                    self._dirty_circuits.add(webhook_id)
                async with self.pool.connection() as conn:
                    cancelled = await self.store.end(conn, webhook_id, "cancelled", now)
                if cancelled:
                    log.info("deliveries.cancelled", webhook_id=webhook_id, count=cancelled)
                return
            self._targets[webhook_id] = target
            circuit = self._circuits.get(webhook_id, Circuit())
            if target.status == "active" and (
                circuit.open or (old is not None and old.status == "failing")
            ):
                # Closed by a probe or by an operator (PATCH status active): release, in order.
                self._set_circuit(webhook_id, Circuit())
                async with self.pool.connection() as conn:
                    await self.store.release(conn, webhook_id, now)
                self._wake.set()
            elif target.status == "failing" and not circuit.open:
                probe_at = now + target.probe_interval_seconds * 1000
                self._set_circuit(
                    webhook_id, Circuit(failures=circuit.failures, opened_at=now, probe_at=probe_at)
                )
                async with self.pool.connection() as conn:
                    await self.store.hold(conn, webhook_id)
        if self._dirty_circuits:
            self._results_ready.set()


async def _wait(event: asyncio.Event, stop: asyncio.Event, timeout: float) -> None:
    tasks = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
