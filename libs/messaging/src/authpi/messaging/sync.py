"""Read-your-writes across the deployment (DESIGN.md 3): a Core API write answers only once every
cache and projection of the deployment that its events concern has applied them, bounded.

The pieces, one `Sync` per process:
- `Publications`: the process's relays report each published event's JetStream stream sequence,
  so the writer learns where its events sit in the stream.
- `Progress`: what applies events in this process (cache followers, projection consumers, the
  key cache) says which event types it takes and waits until it has applied a sequence.
- Membership: every process announces itself on `<ns>.sync.hello` each second (and leaves with
  `<ns>.sync.bye`), so a writer knows which processes (IdP workers included) must answer.
- A write barrier: the writer sends `(type, sequence)` of its events on `<ns>.sync.wait`; each
  process answers once every local `Progress` that takes one of those types has applied it. The
  writer waits for an answer from every live member, or for its deadline.

It never sleeps and hopes: every wait is on an observable sequence, and only the write's response
waits. The token endpoint's hot path reads memory only."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Sequence
from typing import Protocol

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from authpi.observability import get_logger

log = get_logger("authpi.sync")

WRITE_WAIT_S = 3.0  # the longest a write's response waits for the deployment's caches
HELLO_INTERVAL_S = 1.0
MEMBER_TTL_S = 4.0  # a member silent this long is gone (a killed process)
KEEP_PUBLISHED = 200_000  # event ids remembered with their stream sequence


def type_matches(pattern: str, event_type: str) -> bool:
    """NATS-style token match of an event type (`client.>`, `signing-key.*`, `agent.created`)."""
    want = pattern.split(".")
    have = event_type.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(want) == len(have)


class Watermark:
    """A sequence that moves forward, and waiters for it to reach a target."""

    def __init__(self) -> None:
        self.value = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def reset(self, value: int) -> None:
        """A reload: the value may go back (a restarted follower resumes from its checkpoint)."""
        self.value = value
        self._release()

    def advance(self, value: int) -> None:
        if value > self.value:
            self.value = value
            self._release()

    async def reach(self, target: int, timeout: float) -> bool:
        if self.value >= target:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (target, future)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(entry)

    def _release(self) -> None:
        if not self._waiters:
            return
        for target, future in self._waiters:
            if target <= self.value and not future.done():
                future.set_result(None)


class Progress(Protocol):
    """Something in this process that applies events: it takes some event types and can wait
    until it has applied the stream up to a sequence (for the types it takes)."""

    @property
    def name(self) -> str: ...

    def takes(self, event_type: str) -> bool: ...

    async def reach(self, seq: int, timeout: float) -> bool: ...


class Publications:
    """Event id -> JetStream stream sequence, reported by this process's relays."""

    def __init__(self, keep: int = KEEP_PUBLISHED) -> None:
        # Whether this process runs the relays of its writes: only then does it learn where
        # they sit in the stream (a writer whose relays run elsewhere cannot wait, and does not).
        self.relayed_here = False
        self.keep = keep
        self._seqs: OrderedDict[str, int] = OrderedDict()
        self._waiters: dict[str, asyncio.Future[int]] = {}

    def published(self, event_id: str, seq: int) -> None:
        self._seqs[event_id] = seq
        if len(self._seqs) > self.keep:
            self._seqs.popitem(last=False)
        waiter = self._waiters.pop(event_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(seq)

    async def seq_of(self, event_id: str, timeout: float) -> int | None:
        seq = self._seqs.get(event_id)
        if seq is not None:
            return seq
        waiter = self._waiters.get(event_id)
        if waiter is None:
            waiter = self._waiters[event_id] = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            self._waiters.pop(event_id, None)
            return None


class _Hello(msgspec.Struct, frozen=True):
    id: str


class _Request(msgspec.Struct, frozen=True):
    token: str
    targets: list[tuple[str, int]]  # (event type, stream sequence)
    timeout: float


class _Answer(msgspec.Struct, frozen=True):
    token: str
    id: str
    ok: bool


class Written(Protocol):
    """What a write reports of each event it committed (eventstore.StoredEvent)."""

    @property
    def event_id(self) -> str: ...

    @property
    def type(self) -> str: ...


class Sync:
    def __init__(self, nc: NATS, namespace: str) -> None:
        self.nc = nc
        self.namespace = namespace
        self.id = uuid.uuid4().hex
        self.publications = Publications()
        self.progress: list[Progress] = []
        self._members: dict[str, float] = {}
        self._pending: dict[str, tuple[set[str], asyncio.Event]] = {}
        self._inbox = f"{namespace}.sync.reply.{self.id}"
        self._tasks: set[asyncio.Task[None]] = set()
        self.running = asyncio.Event()

    def track(self, progress: Progress) -> None:
        self.progress.append(progress)

    def untrack(self, progress: Progress) -> None:
        """It stopped applying events: writes no longer wait for it (a stopped follower never
        reaches a sequence, so every later write would wait its whole deadline)."""
        with contextlib.suppress(ValueError):
            self.progress.remove(progress)

    def _subject(self, name: str) -> str:
        return f"{self.namespace}.sync.{name}"

    async def run(self, stop: asyncio.Event) -> None:
        """Worker task: answer barriers, announce this process, learn the others."""
        handlers = (
            (self._subject("wait"), self._on_wait),
            (self._subject("hello"), self._on_hello),
            (self._subject("bye"), self._on_bye),
            (self._inbox, self._on_answer),
        )
        subs = [
            await self.nc.subscribe(subject, cb=cb)  # pyright: ignore[reportUnknownMemberType]
            for subject, cb in handlers
        ]
        hello = msgspec.json.encode(_Hello(self.id))
        try:
            await self.nc.publish(self._subject("hello"), hello)
            await self.nc.flush()
            self.running.set()
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), HELLO_INTERVAL_S)
                if not stop.is_set():
                    await self.nc.publish(self._subject("hello"), hello)
        finally:
            self.running.clear()
            with contextlib.suppress(Exception):
                await self.nc.publish(self._subject("bye"), hello)
                await self.nc.flush()
            for sub in subs:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
            for task in list(self._tasks):
                task.cancel()

    def members(self) -> set[str]:
        now = asyncio.get_running_loop().time()
        for member, seen in list(self._members.items()):
            if now - seen > MEMBER_TTL_S:
                del self._members[member]
        return set(self._members)

    async def _on_hello(self, msg: Msg) -> None:
        member = msgspec.json.decode(msg.data, type=_Hello).id
        self._members[member] = asyncio.get_running_loop().time()

    async def _on_bye(self, msg: Msg) -> None:
        self._members.pop(msgspec.json.decode(msg.data, type=_Hello).id, None)

    async def _on_answer(self, msg: Msg) -> None:
        answer = msgspec.json.decode(msg.data, type=_Answer)
        pending = self._pending.get(answer.token)
        if pending is None:
            return
        pending[0].discard(answer.id)
        if not pending[0]:
            pending[1].set()

    async def _on_wait(self, msg: Msg) -> None:
        task = asyncio.create_task(self._answer(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, msg: Msg) -> None:
        request = msgspec.json.decode(msg.data, type=_Request)
        waits: list[Awaitable[bool]] = []
        for progress in self.progress:
            seqs = [seq for t, seq in request.targets if progress.takes(t)]
            if seqs:
                waits.append(progress.reach(max(seqs), request.timeout))
        results = await asyncio.gather(*waits)
        if not all(results):
            names = [p.name for p in self.progress]
            log.warning("sync.behind", process=self.id, progress=names, targets=request.targets)
        if msg.reply:
            answer = _Answer(request.token, self.id, all(results))
            await self.nc.publish(msg.reply, msgspec.json.encode(answer))

    async def wait_applied(self, written: Sequence[Written], timeout: float = WRITE_WAIT_S) -> bool:
        """Until every member has applied `written`, or `timeout`: True when all did."""
        if not written or not self.running.is_set() or not self.publications.relayed_here:
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        targets: list[tuple[str, int]] = []
        for event in written:
            seq = await self.publications.seq_of(event.event_id, deadline - loop.time())
            if seq is None:
                log.warning("sync.unpublished", event_id=event.event_id, type=event.type)
                return False
            targets.append((event.type, seq))
        return await self.wait_sequences(targets, max(deadline - loop.time(), 0.0))

    async def wait_sequences(self, targets: Sequence[tuple[str, int]], timeout: float) -> bool:
        """Until every member has applied the stream up to each (event type, sequence) of
        `targets`, or `timeout`. For a writer that learnt the sequences itself (a process that
        follows its own events rather than relaying them)."""
        if not targets or not self.running.is_set():
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        members = self.members() | {self.id}
        token = uuid.uuid4().hex
        done = asyncio.Event()
        self._pending[token] = (members, done)
        try:
            payload = _Request(token, list(targets), max(deadline - loop.time(), 0.0))
            await self.nc.publish(
                self._subject("wait"), msgspec.json.encode(payload), reply=self._inbox
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), max(deadline - loop.time(), 0.0))
        finally:
            self._pending.pop(token, None)
        if not done.is_set():
            log.warning("sync.timeout", missing=sorted(members), targets=targets)
        return done.is_set()
