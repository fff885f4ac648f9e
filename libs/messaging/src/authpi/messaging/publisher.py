"""Batched runtime facts (DESIGN.md 3): a hot path (the token endpoint, the gateway's API-key
check) adds a fact to memory and returns; a worker task publishes the buffer to the FACTS stream
as one message. Nothing on the request path waits for NATS.

The first fact after a quiet spell goes out at once (no timer to wait out, and none ticking while
idle); after each publish the task waits `interval` (or until the buffer fills) before the next,
so under load a batch gathers what arrived meanwhile: each batch costs every fact consumer
(metering, agent usage, the audit log) a fetch and a transaction. A batch that fails to publish
is retried with the same Nats-Msg-Id, so a retry after a lost ack is not counted twice. The
buffer is bounded: if NATS stays away, the oldest facts are dropped and counted."""

from __future__ import annotations

import asyncio
import contextlib
import os

from nats.js import JetStreamContext

from authpi.contracts.facts import Fact, FactBatch, encode_batch
from authpi.contracts.subjects import fact_subject
from authpi.messaging.stopping import unless_stopped
from authpi.observability import get_logger

log = get_logger("authpi.facts")


class FactPublisher:
    def __init__(
        self,
        js: JetStreamContext,
        namespace: str,
        *,
        interval: float = 0.25,
        batch_size: int = 2000,
        max_buffer: int = 200_000,
    ) -> None:
        self.js = js
        self.namespace = namespace
        self.interval = interval
        self.batch_size = batch_size
        self.max_buffer = max_buffer
        self._buffer: list[Fact] = []
        self._full = asyncio.Event()
        self._pending = asyncio.Event()
        self.published = 0
        self.dropped = 0

    def add(self, fact: Fact) -> None:
        buffer = self._buffer
        buffer.append(fact)
        if not self._pending.is_set():
            self._pending.set()
        if len(buffer) >= self.batch_size:
            self._full.set()
        if len(buffer) > self.max_buffer:
            excess = len(buffer) - self.max_buffer
            del buffer[:excess]
            self.dropped += excess

    async def run(self, stop: asyncio.Event) -> None:
        """Worker task: a flush as soon as a fact waits, then at most one per `interval` unless
        the buffer fills; a last flush on stop."""
        while not stop.is_set():
            await unless_stopped(self._pending.wait(), stop)
            self._pending.clear()
            self._full.clear()
            # Only what waits now: a fact added while this flush publishes goes in the next
            # batch, after the interval (flushing until the buffer is empty would publish one
            # small batch per round trip under load, and never wait).
            await self.flush(len(self._buffer))
            if self._buffer:
                self._pending.set()  # NATS away: the facts kept are tried again
            # Let the next batch gather (a stop or a full buffer ends the wait early).
            await unless_stopped(_wait_for(self._full, self.interval), stop)
        await self.flush()

    async def flush(self, limit: int | None = None) -> None:
        """Publish the buffer's first `limit` facts (all of them by default), in batches."""
        left = len(self._buffer) if limit is None else limit
        while self._buffer and left > 0:
            # One fact type per batch: consumers filter on the batch's subject.
            tag = self._buffer[0].__struct_config__.tag
            facts: list[Fact] = []
            for fact in self._buffer[: min(self.batch_size, left)]:
                if fact.__struct_config__.tag != tag:
                    break
                facts.append(fact)
            batch = FactBatch(batch_id=os.urandom(12).hex(), facts=facts)
            subject = fact_subject(facts[0].__struct_config__.tag, self.namespace)  # type: ignore[arg-type]
            for attempt in range(5):
                try:
                    await self.js.publish(
                        subject, encode_batch(batch), headers={"Nats-Msg-Id": batch.batch_id}
                    )
                    break
                except Exception as exc:  # NATS away: keep the facts, retry
                    log.warning("facts.publish_failed", attempt=attempt, error=str(exc))
                    await asyncio.sleep(0.2 * (attempt + 1))
            else:
                return  # still in the buffer; the next tick retries
            del self._buffer[: len(facts)]
            self.published += len(facts)
            left -= len(facts)


async def _wait_for(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)
