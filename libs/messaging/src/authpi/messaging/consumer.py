"""The consumer runtime: durable pull consumers, a batch at a time. Each batch is applied in one
transaction together with its checkpoint, so a message is applied at most once in effect; a
poison message is dead-lettered in that transaction; one acknowledgement then settles the whole
batch (AckPolicy.ALL). `DurableConsumer` is the loop every consumer shares; `ProjectionConsumer`
feeds a projection from the domain-event stream, and `messaging.facts.FactConsumer` one from the
FACTS stream.

Exactly one consumer per projection runs at a time (a session advisory lock). On start it
re-creates its durable consumer at the checkpointed stream sequence + 1: the database, not the
server's ack state, says where to resume, so a crash between commit and ack or between fetch and
commit never reorders or loses an event. Every envelope's source is checked before it is applied
(messaging.provenance); an untrusted one is dead-lettered like poison."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import msgspec
import psycopg
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from psycopg_pool import AsyncConnectionPool

from authpi.contracts.base import Envelope, Event
from authpi.contracts.catalogue import decode_envelope, decode_event
from authpi.contracts.subjects import all_events, events_of_type, events_stream
from authpi.eventstore.checkpoints import Checkpoint, Checkpoints
from authpi.eventstore.locks import consumer_lock, run_holding
from authpi.eventstore.store import StoredEvent
from authpi.messaging.projection import Projection
from authpi.messaging.provenance import forgery
from authpi.messaging.security import event_type_of_subject, is_security_event
from authpi.messaging.stopping import unless_stopped
from authpi.messaging.sync import Watermark, type_matches
from authpi.observability import get_logger

log = get_logger("authpi.consumer")

SEQ_SOURCE = "*"  # checkpoint row holding the last handled stream sequence
TRANSIENT = (psycopg.OperationalError, psycopg.errors.SerializationFailure)
# Told of each dead letter: (consumer, event type, event id). Alerts and metrics hang on it.
DeadLetterHook = Callable[[str, str | None, str | None], None]


class DurableConsumer:
    """The runtime every durable pull consumer shares: one copy per deployment (the lock), bound
    at the checkpointed stream sequence + 1, fetching in batches, retrying transient failures in
    place, settling each batch with one acknowledgement. What a batch means is `_apply_batch`'s."""

    def __init__(
        self,
        *,
        js: JetStreamContext,
        pool: AsyncConnectionPool,
        dsn: str,
        durable: str,
        schema: str,
        stream: str,
        batch_size: int,
        on_dead_letter: DeadLetterHook | None = None,
    ) -> None:
        self.js = js
        self.pool = pool
        self.dsn = dsn
        self.durable = durable
        self.schema = schema
        self.stream = stream
        self.batch_size = batch_size
        self.on_dead_letter = on_dead_letter
        self.checkpoints = Checkpoints(schema, durable)
        self.running = asyncio.Event()
        # Running, or standing by while another process holds the lock (a service's replica
        # serves meanwhile, and takes over once the holder is gone).
        self.started = asyncio.Event()

    def _filters(self) -> list[str]:
        """The subjects the durable consumer is bound to."""
        raise NotImplementedError

    async def _apply_batch(self, msgs: list[Msg]) -> None:
        """Apply `msgs` with the checkpoint in one transaction, dead-lettering a poison message
        in it (`_reject`); the batch is then settled with one acknowledgement."""
        raise NotImplementedError

    def _starting(self, last_seq: int) -> None:
        """Told the checkpointed stream sequence it resumes after."""

    def _committed(self, msgs: list[Msg]) -> None:
        """Told of each batch once it is committed, before its messages are settled."""

    async def run(self, stop: asyncio.Event) -> None:
        """Consume while this process holds the consumer's lock (one copy per deployment; the
        others stand by). A lock whose session is lost (a PostgreSQL restart, the network cut)
        stops the consuming at the next check, and this raises: the supervisor starts it again,
        to take the lock anew or to stand by while another replica consumes."""
        key = consumer_lock(self.schema, self.durable)
        await run_holding(self.dsn, key, self._consume, stop, waiting=self.started)

    async def _consume(self, stop: asyncio.Event) -> None:
        sub = await self._bind()
        self.running.set()
        self.started.set()
        log.info("consumer.started", consumer=self.durable)
        try:
            await self._loop(sub, stop)
        finally:
            # No longer applying: a write's barrier (messaging.sync, `reach`) must not wait on
            # this copy while it stands by.
            self.running.clear()
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _bind(self) -> JetStreamContext.PullSubscription:
        async with self.pool.connection() as conn, conn.transaction():
            cps = await self.checkpoints.load(conn)
        start = cps[SEQ_SOURCE].last_seq + 1 if SEQ_SOURCE in cps else 1
        self._starting(start - 1)
        with contextlib.suppress(NotFoundError):
            await self.js.delete_consumer(self.stream, self.durable)
        # add_consumer also takes untyped **params (none passed here).
        await self.js.add_consumer(  # pyright: ignore[reportUnknownMemberType]
            self.stream,
            ConsumerConfig(
                durable_name=self.durable,
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=start,
                ack_policy=AckPolicy.ALL,
                ack_wait=60,
                max_ack_pending=self.batch_size * 4,
                filter_subjects=self._filters(),
            ),
        )
        return await self.js.pull_subscribe_bind(durable=self.durable, stream=self.stream)

    async def _loop(self, sub: JetStreamContext.PullSubscription, stop: asyncio.Event) -> None:
        busy = False
        while not stop.is_set():
            try:
                # Busy: take what is there now (no_wait, short linger). Idle: wait for one
                # message, so a lone one is applied at once instead of waiting for a batch.
                if busy:
                    msgs = await sub.fetch(self.batch_size, timeout=0.01)
                else:
                    # Told to stop while idle: gone at once (an unacked message is fetched
                    # again after a restart, which resumes from the checkpoint anyway).
                    msgs = await unless_stopped(sub.fetch(1, timeout=1.0), stop) or []
            except (TimeoutError, NatsTimeoutError):
                busy = False
                continue
            if not msgs:
                continue
            busy = True
            await self.handle(msgs, stop)

    async def handle(self, msgs: list[Msg], stop: asyncio.Event) -> None:
        delay = 0.05
        while True:
            try:
                await self._apply_batch(msgs)
                break
            except TRANSIENT as exc:
                if stop.is_set():
                    raise
                log.warning("consumer.retrying", consumer=self.durable, error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self._committed(msgs)
        # One acknowledgement settles the batch (AckPolicy.ALL: it covers every message
        # delivered before it). The checkpoint committed with the batch, not the server's ack
        # state, says what was applied, and a message refused as poison was dead-lettered in
        # that same transaction: none of them is to be delivered again. Acknowledging each
        # message cost a NATS publish per message and per consumer.
        await msgs[-1].ack()

    async def _reject(
        self,
        conn: psycopg.AsyncConnection[Any],
        msg: Msg,
        event_id: str | None,
        event_type: str | None,
        error: str,
    ) -> None:
        event_type = event_type or event_type_of_subject(msg.subject)
        log.error(
            "message.rejected",
            consumer=self.durable,
            stream_seq=msg.metadata.sequence.stream,
            subject=msg.subject,
            event_id=event_id,
            event_type=event_type,
            error=error,
        )
        await self.checkpoints.dead_letter(
            conn,
            stream_seq=msg.metadata.sequence.stream,
            subject=msg.subject,
            event_id=event_id,
            error=error,
            payload=msg.data,
            event_type=event_type,
            security=is_security_event(event_type),
        )
        if self.on_dead_letter is not None:
            self.on_dead_letter(self.durable, event_type, event_id)


class ProjectionConsumer(DurableConsumer):
    """A projection fed by the domain-event stream: every envelope is checked for provenance,
    then applied once per source in (tx_id, position) order."""

    def __init__(
        self,
        *,
        js: JetStreamContext,
        pool: AsyncConnectionPool,
        dsn: str,
        projection: Projection,
        namespace: str = "authpi",
        batch_size: int = 500,
        after_commit: Callable[[int], None] | None = None,
        on_dead_letter: DeadLetterHook | None = None,
    ) -> None:
        super().__init__(
            js=js, pool=pool, dsn=dsn, durable=projection.name, schema=projection.schema,
            stream=events_stream(namespace), batch_size=batch_size, on_dead_letter=on_dead_letter,
        )  # fmt: skip
        self.projection = projection
        self.namespace = namespace
        self.after_commit = after_commit
        self.applied = 0
        self.applied_seq = Watermark()  # the stream sequence applied (read-your-writes, sync.py)

    @property
    def name(self) -> str:
        return f"consumer:{self.projection.name}"

    def takes(self, event_type: str) -> bool:
        types = self.projection.event_types
        return not types or any(type_matches(t, event_type) for t in types)

    async def reach(self, seq: int, timeout: float) -> bool:
        """Until the events this projection takes are applied up to stream sequence `seq`. A copy
        that does not hold the projection's lock applies nothing: it has nothing to wait for."""
        if not self.running.is_set():
            return True
        return await self.applied_seq.reach(seq, timeout)

    def _filters(self) -> list[str]:
        types = self.projection.event_types
        if not types:
            return [all_events(self.namespace)]
        return [events_of_type(t, self.namespace) for t in types]

    def _starting(self, last_seq: int) -> None:
        self.applied_seq.reset(last_seq)

    def _committed(self, msgs: list[Msg]) -> None:
        if msgs:
            self.applied_seq.advance(msgs[-1].metadata.sequence.stream)
        if self.after_commit is not None:
            self.after_commit(len(msgs))

    async def _apply_batch(self, msgs: list[Msg]) -> None:
        """The whole batch in one pipelined transaction; if any message fails, roll it back and
        go message by message with savepoints, so that only the poison one is rejected."""
        try:
            decoded = [(msg, decode_envelope(msg.data)) for msg in msgs]
            events = [(msg, env, decode_event(env.data)) for msg, env in decoded]
        except (msgspec.DecodeError, msgspec.ValidationError):
            await self._apply_careful(msgs)
            return
        if any(forgery(msg.subject, env, self.namespace) for msg, env, _ in events):
            await self._apply_careful(msgs)
            return
        try:
            await self._apply_fast(events)
        except TRANSIENT:
            raise
        except Exception:
            await self._apply_careful(msgs)

    async def _apply_fast(self, events: list[tuple[Msg, Envelope, Event]]) -> None:
        # A projection with `apply_batch(conn, events)` takes the batch's new events in one
        # call, in their order (e.g. one INSERT for them all); otherwise each goes to `apply`.
        batch_apply = getattr(self.projection, "apply_batch", None)
        async with self.pool.connection() as conn, conn.transaction():
            cps = await self.checkpoints.load(conn)
            seq_cp = cps.setdefault(SEQ_SOURCE, Checkpoint(source=SEQ_SOURCE))
            async with conn.pipeline():
                todo: list[StoredEvent] = []
                last: dict[str, Msg] = {}  # each source's last message of the batch
                for msg, env, event in events:
                    cp = cps.setdefault(env.source, Checkpoint(source=env.source))
                    if not cp.covers(env.tx_id, env.position):
                        if batch_apply is None:
                            await self.projection.apply(conn, to_stored(env, event))
                        else:
                            todo.append(to_stored(env, event))
                        cp.last_tx, cp.last_position = env.tx_id, env.position
                    last[env.source] = msg
                # A message's stream sequence is parsed from its reply subject: only the last
                # one of each source (and of the batch) is kept, so only those are parsed.
                for source, msg in last.items():
                    cps[source].last_seq = msg.metadata.sequence.stream
                if events:
                    seq_cp.last_seq = events[-1][0].metadata.sequence.stream
                if todo and batch_apply is not None:
                    await batch_apply(conn, todo)
                await self.checkpoints.save(conn, cps)
        self.applied += len(events)

    async def _apply_careful(self, msgs: list[Msg]) -> None:
        applied = 0
        async with self.pool.connection() as conn, conn.transaction():
            cps = await self.checkpoints.load(conn)
            seq_cp = cps.setdefault(SEQ_SOURCE, Checkpoint(source=SEQ_SOURCE))
            for msg in msgs:
                applied += await self._apply_one(conn, cps, msg)
                seq_cp.last_seq = msg.metadata.sequence.stream
            await self.checkpoints.save(conn, cps)
        self.applied += applied

    async def _apply_one(
        self, conn: psycopg.AsyncConnection[Any], cps: dict[str, Checkpoint], msg: Msg
    ) -> bool:
        seq = msg.metadata.sequence.stream
        try:
            env = decode_envelope(msg.data)
            event = decode_event(env.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            await self._reject(conn, msg, None, None, f"undecodable: {exc}")
            return False
        reason = forgery(msg.subject, env, self.namespace)
        if reason is not None:
            # Before any checkpoint: a forged envelope's source, tx_id or position must never
            # move the per-source cursor, or real events behind it would be skipped.
            await self._reject(conn, msg, env.event_id, env.type, f"untrusted: {reason}")
            return False
        cp = cps.setdefault(env.source, Checkpoint(source=env.source))
        if cp.covers(env.tx_id, env.position):
            return True  # a duplicate: already applied in effect
        try:
            async with conn.transaction():
                await self.projection.apply(conn, to_stored(env, event))
        except TRANSIENT:
            raise
        except Exception as exc:
            await self._reject(conn, msg, env.event_id, env.type, f"{type(exc).__name__}: {exc}")
            return False
        finally:
            cp.last_seq = seq
        cp.last_tx, cp.last_position = env.tx_id, env.position
        return True


def to_stored(env: Envelope, event: Event) -> StoredEvent:
    return StoredEvent(
        position=env.position,
        tx_id=env.tx_id,
        event_id=env.event_id,
        stream_id=env.stream_id,
        stream_version=env.stream_version,
        type=env.type,
        schema_version=env.schema_version,
        event=event,
        meta=env.meta,
        recorded_at=env.recorded_at,
    )
