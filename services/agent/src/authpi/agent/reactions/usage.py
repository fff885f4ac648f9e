"""agent-verifier-usage: `usage_count` and `last_used_at` of agent verifiers (platform.md 3.3),
aggregated from the `machine.token.issued` facts the token endpoint publishes in batches on the
FACTS stream (DESIGN.md 3; a fact carries `agent_id` and `verifier_id`).

A durable pull consumer with explicit ack, run once per deployment (advisory lock). Each fetch is
applied in one transaction together with the last stream sequence, so a batch counts exactly
once; on start the consumer is re-created at that sequence + 1, the database saying where to
resume. An undecodable batch is dead-lettered and terminated."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
import nats
import psycopg
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from authpi.contracts.facts import MachineTokenIssued, decode_batch
from authpi.contracts.subjects import fact_subject, facts_stream
from authpi.eventstore.checkpoints import Checkpoint, Checkpoints
from authpi.eventstore.locks import acquire, consumer_lock
from authpi.messaging.consumer import SEQ_SOURCE, TRANSIENT
from authpi.observability import get_logger

log = get_logger("authpi.agent.usage")

_COUNT = """
UPDATE {q}.verifier_usage u SET usage_count = u.usage_count + d.n,
  last_used_at = greatest(coalesce(u.last_used_at, 0), d.last_used_at)
FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) AS d(verifier_id, n, last_used_at)
WHERE u.verifier_id = d.verifier_id
"""


class Tally(msgspec.Struct, kw_only=True):
    count: int = 0
    last_used_at: int = 0


def tally(facts: list[Any], into: dict[str, Tally]) -> None:
    """Add the agent tokens among `facts` to the per-verifier tallies."""
    for fact in facts:
        if isinstance(fact, MachineTokenIssued) and fact.agent_id and fact.verifier_id:
            entry = into.setdefault(fact.verifier_id, Tally())
            entry.count += 1
            entry.last_used_at = max(entry.last_used_at, fact.issued_at)


class VerifierUsage:
    name = "agent-verifier-usage"

    def __init__(
        self,
        *,
        js: JetStreamContext,
        pool: AsyncConnectionPool,
        dsn: str,
        schema: str,
        namespace: str,
        batch_size: int = 200,
    ) -> None:
        self.js = js
        self.pool = pool
        self.dsn = dsn
        self.schema = schema
        self.stream = facts_stream(namespace)
        self.subject = fact_subject("machine.token.issued", namespace)
        self.batch_size = batch_size
        self.checkpoints = Checkpoints(schema, self.name)
        self.running = asyncio.Event()
        self._count = sql.SQL(_COUNT).format(q=sql.Identifier(schema)).as_string()

    async def run(self, stop: asyncio.Event) -> None:
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as lock:
            if not await acquire(lock, consumer_lock(self.schema, self.name), stop=stop):
                return
            sub = await self._bind()
            self.running.set()
            log.info("consumer.started", consumer=self.name)
            try:
                while not stop.is_set():
                    try:
                        msgs = await sub.fetch(self.batch_size, timeout=1.0)
                    except (TimeoutError, nats.errors.TimeoutError):
                        continue
                    await self.handle(msgs, stop)
            finally:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    async def _bind(self) -> JetStreamContext.PullSubscription:
        async with self.pool.connection() as conn, conn.transaction():
            cps = await self.checkpoints.load(conn)
        start = cps[SEQ_SOURCE].last_seq + 1 if SEQ_SOURCE in cps else 1
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await self.js.delete_consumer(self.stream, self.name)
        await self.js.add_consumer(
            self.stream,
            ConsumerConfig(
                durable_name=self.name,
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=start,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=60,
                max_ack_pending=self.batch_size * 4,
                filter_subject=self.subject,
            ),
        )
        return await self.js.pull_subscribe_bind(durable=self.name, stream=self.stream)

    async def handle(self, msgs: list[Msg], stop: asyncio.Event) -> None:
        delay = 0.05
        while True:
            try:
                verdicts = await self._apply(msgs)
                break
            except TRANSIENT as exc:
                if stop.is_set():
                    raise
                log.warning("consumer.retrying", consumer=self.name, error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        for msg, ok in zip(msgs, verdicts, strict=True):
            await (msg.ack() if ok else msg.term())

    async def _apply(self, msgs: list[Msg]) -> list[bool]:
        tallies: dict[str, Tally] = {}
        verdicts: list[bool] = []
        async with self.pool.connection() as conn, conn.transaction():
            cps = await self.checkpoints.load(conn)
            cp = cps.setdefault(SEQ_SOURCE, Checkpoint(source=SEQ_SOURCE))
            for msg in msgs:
                seq = msg.metadata.sequence.stream
                if seq > cp.last_seq:
                    verdicts.append(await self._take(conn, msg, tallies))
                    cp.last_seq = seq
                else:
                    verdicts.append(True)  # counted before a crash, redelivered
            if tallies:
                ids = list(tallies)
                await conn.execute(self._count, [
                    ids, [tallies[i].count for i in ids],
                    [tallies[i].last_used_at for i in ids]])  # fmt: skip
            await self.checkpoints.save(conn, cps)
        return verdicts

    async def _take(
        self, conn: psycopg.AsyncConnection[Any], msg: Msg, tallies: dict[str, Tally]
    ) -> bool:
        try:
            batch = decode_batch(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.error("message.rejected", consumer=self.name, subject=msg.subject, error=str(exc))
            await self.checkpoints.dead_letter(
                conn, stream_seq=msg.metadata.sequence.stream, subject=msg.subject,
                event_id=None, error=f"undecodable: {exc}", payload=msg.data,
            )  # fmt: skip
            return False
        tally(list(batch.facts), tallies)
        return True
