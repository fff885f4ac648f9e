"""The one scaffold of every in-memory cache a process that serves HTTP keeps (DESIGN.md 5).

`FollowedCache` is the cache's side: what it loads from its consumer-fed projection and how it
takes one followed event; it owns its `CacheFollower` and exposes the follower's `warm` flag and
worker task (`run`). `CacheFollower` is the stream's side: it reads the projection together with
that consumer's checkpoint in one snapshot, then follows the domain-event stream from the
checkpoint's next sequence with its own ordered (ephemeral) JetStream consumer. Every event is
then either in the loaded rows or delivered afterwards, never both and never neither: the
projection's consumer writes its rows and its checkpoint in one transaction. `warm` is set once
the follower has caught up with what the stream held when it subscribed, so a worker takes no
traffic on a cold cache."""

from __future__ import annotations

import abc
import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, LiteralString

import msgspec
import psycopg
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from psycopg_pool import AsyncConnectionPool

from authpi.contracts.base import Envelope, Event
from authpi.contracts.catalogue import decode_envelope, decode_event
from authpi.contracts.subjects import events_of_type, events_stream
from authpi.eventstore.sqltext import render
from authpi.messaging.consumer import SEQ_SOURCE
from authpi.messaging.provenance import forgery
from authpi.messaging.sync import Watermark, type_matches
from authpi.observability import get_logger

log = get_logger("authpi.follower")

Loader = Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]]
Applier = Callable[[Envelope, Event], None]


class CacheFollower:
    def __init__(
        self,
        *,
        pool: AsyncConnectionPool | None,
        js: JetStreamContext | None,
        namespace: str,
        schema: str,
        consumer: str,
        event_types: str,
        load: Loader,
        apply: Applier,
        inline: bool = False,
    ) -> None:
        """`event_types` is one filter of the catalogue's types, e.g. `client.>`. Without a pool
        or a stream (a cache built for a unit test) the follower cannot run. `inline`: the
        projection is applied in the writer's own transaction, so it has no checkpoint; the
        follower then reads the stream's last sequence before the snapshot and follows from
        there (the relay publishes an event only once it is committed, so every event up to
        that sequence is in the snapshot)."""
        self.pool = pool
        self.js = js
        self.namespace = namespace
        self.consumer = consumer
        self.event_types = event_types
        self.load = load
        self.apply = apply
        self.inline = inline
        self.seq = 0  # the stream sequence of the event being applied (during `apply`)
        self.warm = asyncio.Event()
        self.last_seq = 0
        self.applied = Watermark()  # the stream sequence applied (read-your-writes, sync.py)
        self.failures = 0  # events this follower could not apply (each forces a reload)
        self._received = 0
        self._broken = asyncio.Event()
        self.rejected = 0  # untrusted envelopes seen (messaging.provenance)
        self._checkpoint: LiteralString = render(
            "SELECT last_seq FROM {schema}.checkpoints WHERE consumer = %s AND source = %s",
            schema=schema,
        )

    @property
    def name(self) -> str:
        return f"follower:{self.consumer}"

    def takes(self, event_type: str) -> bool:
        return type_matches(self.event_types, event_type)

    async def reach(self, seq: int, timeout: float) -> bool:
        """Until the events this follower takes are applied up to stream sequence `seq`."""
        return await self.applied.reach(seq, timeout)

    async def run(self, stop: asyncio.Event) -> None:
        """Worker task: load, follow until `stop`. A failure propagates to the supervisor,
        which restarts the task: a reload from the projection, so nothing is lost. An event the
        cache cannot apply is such a failure: until the reload, `warm` is clear (not ready)."""
        assert self.js is not None, "a follower needs a stream to follow"
        self.warm.clear()
        self._broken.clear()
        after = await self._load()
        self._received = 0  # messages this subscription has handled
        sub = await self.js.subscribe(
            events_of_type(self.event_types, self.namespace),
            stream=events_stream(self.namespace),
            cb=self._on_message,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            config=ConsumerConfig(opt_start_seq=after + 1),
        )
        try:
            log.info("follower.subscribed", consumer=self.consumer, from_seq=after + 1)
            while not self.warm.is_set() and not stop.is_set() and not self._broken.is_set():
                info = await sub.consumer_info()
                # Counted in messages delivered to this consumer: its delivered *stream* sequence
                # also moves past events its filter skips, which never arrive here.
                delivered = info.delivered.consumer_seq if info.delivered else 0
                if not info.num_pending and self._received >= (delivered or 0):
                    self.warm.set()
                    log.info("follower.warm", consumer=self.consumer, last_seq=self.last_seq)
                    break
                await asyncio.sleep(0.005)
            await _first(stop, self._broken)
        finally:
            await sub.unsubscribe()
        if self._broken.is_set() and not stop.is_set():
            raise FollowerOutOfSync(f"{self.consumer}: an event could not be applied; reloading")

    async def _load(self) -> int:
        assert self.pool is not None, "a follower needs the projection's database"
        stream_seq = 0
        if self.inline:
            assert self.js is not None, "a follower needs a stream to follow"
            stream_seq = (await self.js.stream_info(events_stream(self.namespace))).state.last_seq
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            row: Any = (stream_seq,)
            if not self.inline:
                cur = await conn.execute(self._checkpoint, [self.consumer, SEQ_SOURCE])
                row = await cur.fetchone()
            await self.load(conn)
        self.last_seq = int(row[0]) if row else 0
        self.applied.reset(self.last_seq)
        return self.last_seq

    async def _on_message(self, msg: Msg) -> None:
        try:
            env = decode_envelope(msg.data)
            event = decode_event(env.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.error(
                "message.rejected", consumer=self.consumer, subject=msg.subject, error=str(exc)
            )
        else:
            reason = forgery(msg.subject, env, self.namespace)
            if reason is None:
                self.seq = msg.metadata.sequence.stream
                self._apply(msg, env, event)
            else:
                self.rejected += 1
                log.error(
                    "message.rejected", consumer=self.consumer, subject=msg.subject,
                    event_id=env.event_id, error=f"untrusted: {reason}",
                )  # fmt: skip
        finally:
            # Even a rejected message counts as handled, or `warm` would wait for it forever.
            self._received += 1
            self.last_seq = msg.metadata.sequence.stream
            if not self._broken.is_set():  # a broken cache has applied nothing past its failure
                self.applied.advance(self.last_seq)

    def _apply(self, msg: Msg, env: Envelope, event: Event) -> None:
        if self._broken.is_set():
            return  # the cache is reloaded from the projection; later events come again
        try:
            self.apply(env, event)
        except Exception:
            # Not swallowed: a cache that skipped an event (a revocation, say) would serve
            # stale answers. Count it, take the process out of readiness, reload.
            self.failures += 1
            self.warm.clear()
            self._broken.set()
            log.exception(
                "follower.apply_failed",
                consumer=self.consumer,
                event_type=env.type,
                event_id=env.event_id,
                stream_seq=msg.metadata.sequence.stream,
            )


@dataclasses.dataclass(frozen=True)
class Feed:
    """Where a cache loads and follows from: the pool of the database holding its projection
    (in `schema`) and the deployment's stream. Without them (a unit test) it cannot run."""

    pool: AsyncConnectionPool | None
    js: JetStreamContext | None
    namespace: str
    schema: str


class FollowedCache(abc.ABC):
    """Base of every in-memory cache: loaded from the projection `consumer` feeds, inside one
    snapshot with that consumer's checkpoint (`load`), then kept current with the events of
    `event_types` that follow (`receive`)."""

    def __init__(
        self, feed: Feed, *, consumer: str, event_types: str, inline: bool = False
    ) -> None:
        self.follower = CacheFollower(
            pool=feed.pool, js=feed.js, namespace=feed.namespace, schema=feed.schema,
            consumer=consumer, event_types=event_types, load=self.load, apply=self.receive,
            inline=inline,
        )  # fmt: skip

    @property
    def warm(self) -> asyncio.Event:
        """Set once the cache has caught up: a worker takes no traffic before."""
        return self.follower.warm

    @property
    def last_seq(self) -> int:
        """The last stream sequence handled (observability, tests)."""
        return self.follower.last_seq

    async def run(self, stop: asyncio.Event) -> None:
        """Worker task (every process that serves HTTP): load, then follow until `stop`."""
        await self.follower.run(stop)

    @abc.abstractmethod
    async def load(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Replace what the cache holds with the projection's rows (inside the snapshot)."""

    @abc.abstractmethod
    def receive(self, env: Envelope, event: Event) -> None:
        """Apply one followed event. Raising takes the process out of readiness and reloads."""


class FollowerOutOfSync(RuntimeError):
    """A cache missed an event; its task fails so that the supervisor reloads it."""


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
