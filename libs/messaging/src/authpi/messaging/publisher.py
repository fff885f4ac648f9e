"""Batched runtime facts (DESIGN.md 3): a hot path (the token endpoint, the gateway's API-key
check) adds a fact to memory and returns; a worker task publishes the buffer to the FACTS stream
as one message every few milliseconds (or sooner when it fills). Nothing on the request path
waits for NATS. A batch that fails to publish is retried with the same Nats-Msg-Id, so a retry
after a lost ack is not counted twice. The buffer is bounded: if NATS stays away, the oldest
facts are dropped and counted."""

from __future__ import annotations

import asyncio
import os

from nats.js import JetStreamContext

from authpi.contracts.facts import Fact, FactBatch, encode_batch
from authpi.contracts.subjects import fact_subject
from authpi.observability import get_logger

log = get_logger("authpi.facts")


class FactPublisher:
    def __init__(
        self,
        js: JetStreamContext,
        namespace: str,
        *,
        interval: float = 0.05,
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
        self.published = 0
        self.dropped = 0

    def add(self, fact: Fact) -> None:
        buffer = self._buffer
        buffer.append(fact)
        if len(buffer) >= self.batch_size:
            self._full.set()
        if len(buffer) > self.max_buffer:
            excess = len(buffer) - self.max_buffer
            del buffer[:excess]
            self.dropped += excess

    async def run(self, stop: asyncio.Event) -> None:
        """Worker task: flush on a timer or when full; a last flush on stop."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(self._full.wait(), timeout=self.interval)
            except TimeoutError:
                pass
            self._full.clear()
            await self.flush()
        await self.flush()

    async def flush(self) -> None:
        while self._buffer:
            # One fact type per batch: consumers filter on the batch's subject.
            tag = self._buffer[0].__struct_config__.tag
            facts: list[Fact] = []
            for fact in self._buffer[: self.batch_size]:
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
