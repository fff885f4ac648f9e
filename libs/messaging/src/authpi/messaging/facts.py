"""Projections of high-volume facts (DESIGN.md 3): the FACTS stream carries batches of facts
(`FactBatch`), published with `Nats-Msg-Id` = batch id and never stored as events. A
`FactConsumer` runs one on the consumer runtime (messaging.consumer): every fetch is applied in
one transaction together with the last stream sequence, so a batch counts exactly once; one that
does not decode is dead-lettered and terminated.

Every fact consumer of a process reads the same messages (metering, agent usage and the audit
log each take every `machine.token.issued` batch): `DecodedBatches`, shared by the consumers of
one process, decodes each message once for all of them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import msgspec
import psycopg
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from psycopg_pool import AsyncConnectionPool

from authpi.contracts.facts import Fact, FactBatch, decode_batch
from authpi.contracts.subjects import fact_subject, facts_stream
from authpi.eventstore.checkpoints import Checkpoint
from authpi.messaging.consumer import SEQ_SOURCE, DeadLetterHook, DurableConsumer


class FactProjection(Protocol):
    name: str  # durable consumer name, `<service>-<purpose>` (STYLE.md 3)
    schema: str  # schema holding its tables and checkpoints
    fact_types: tuple[str, ...]  # the fact types it consumes

    async def apply_facts(self, conn: psycopg.AsyncConnection[Any], facts: Sequence[Fact]) -> None:
        """Apply the facts of one fetch inside the caller's transaction (with the checkpoint)."""
        ...


class DecodedBatches:
    """The last `keep` fact batches decoded, by stream sequence and `Nats-Msg-Id`: the fact
    consumers of one process each fetch the same FACTS message, and decode it once. Batches and
    facts are frozen Structs, so sharing them is safe."""

    def __init__(self, keep: int = 64) -> None:
        self.keep = keep
        self._batches: dict[tuple[int, str], FactBatch] = {}

    def decode(self, msg: Msg) -> FactBatch:
        """The batch of `msg`; raises msgspec's errors as decode_batch does."""
        msg_id = (msg.headers or {}).get("Nats-Msg-Id")
        if msg_id is None:
            return decode_batch(msg.data)
        key = (msg.metadata.sequence.stream, msg_id)
        batch = self._batches.get(key)
        if batch is None:
            batch = decode_batch(msg.data)
            self._batches[key] = batch
            if len(self._batches) > self.keep:
                del self._batches[next(iter(self._batches))]  # the oldest
        return batch


class FactConsumer(DurableConsumer):
    def __init__(
        self,
        *,
        js: JetStreamContext,
        pool: AsyncConnectionPool,
        dsn: str,
        projection: FactProjection,
        namespace: str = "authpi",
        batch_size: int = 200,
        on_dead_letter: DeadLetterHook | None = None,
        batches: DecodedBatches | None = None,
    ) -> None:
        super().__init__(
            js=js, pool=pool, dsn=dsn, durable=projection.name, schema=projection.schema,
            stream=facts_stream(namespace), batch_size=batch_size, on_dead_letter=on_dead_letter,
        )  # fmt: skip
        self.projection = projection
        self.namespace = namespace
        self.batches = batches or DecodedBatches()

    def _filters(self) -> list[str]:
        return [fact_subject(t, self.namespace) for t in self.projection.fact_types]

    async def _apply_batch(self, msgs: list[Msg]) -> None:
        facts: list[Fact] = []
        async with self.pool.connection() as conn, conn.transaction():
            cps = await self.checkpoints.load(conn)
            cp = cps.setdefault(SEQ_SOURCE, Checkpoint(source=SEQ_SOURCE))
            for msg in msgs:
                seq = msg.metadata.sequence.stream
                if seq <= cp.last_seq:
                    continue  # applied before a crash, redelivered
                cp.last_seq = seq
                try:
                    batch = self.batches.decode(msg)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    await self._reject(conn, msg, None, None, f"undecodable: {exc}")
                    continue
                facts.extend(batch.facts)
            if facts:
                await self.projection.apply_facts(conn, facts)
            await self.checkpoints.save(conn, cps)
