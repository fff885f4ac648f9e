"""Failed client authentication, throttled per (issuer, client id, source address) with backoff
(idp-api.md 1.5 "Credential attempt throttling"). Client ids are public, so a lock on the client
alone would let anyone lock out a client or an agent; keyed by source, the failures of one
address never refuse the right secret from another. The first 4 failures are free; the 5th locks
the pair for 1 s, and each failure after a lock has ended locks it again for twice as long, up to
15 minutes (failures racing in while it is locked count, but do not lengthen it: a burst of
concurrent requests is one lock, not a doubling per request). A success clears the pair, and a
pair with no failure for 15 minutes starts again. Ids that do not exist count the same way, so the
answers cannot tell which ids exist.

The counters are ephemeral data (DESIGN.md 3), so they live in a NATS KV bucket shared by every
worker process, under an opaque key (a digest of the triple). Only a *failure* writes (a
compare-and-set update, retried on conflict, so concurrent failures in several workers all
count). Every worker watches the bucket and keeps the entries in memory, so the success path
checks a dict and writes nothing; it clears a counter only when it sees one."""

from __future__ import annotations

import asyncio
import contextlib
import math

import msgspec
import nats.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.errors import (
    BucketNotFoundError,
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
)
from nats.js.kv import KeyValue

from authpi.crypto.clock import Clock
from authpi.crypto.ids import sha256_hex
from authpi.observability import get_logger
from authpi.web.addresses import address_key

log = get_logger("authpi.token.lockout")

MAX_FAILURES = 5  # the failure that locks first
BACKOFF_BASE_MS = 1000
BACKOFF_MAX_MS = 15 * 60 * 1000
FORGET_MS = 15 * 60 * 1000  # the bucket's TTL; no lock outlasts it
PRUNE_EVERY_MS = 60 * 1000


class Counter(msgspec.Struct, kw_only=True):
    failures: int = 0
    locks: int = 0  # locks so far: the backoff's exponent
    last: int = 0  # Unix ms of the latest failure
    locked_until: int = 0


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Counter).decode


def bucket_name(namespace: str) -> str:
    return f"{namespace.replace('.', '_')}_client_lockouts"


def key_for(issuer_id: str, client_id: str, source: str | None) -> str:
    """An opaque KV key: client ids and addresses as sent may hold any character."""
    return sha256_hex(f"{issuer_id}\n{client_id}\n{address_key(source)}")[:40]


def lock_ms(locks: int) -> int:
    """How long the `locks`-th lock lasts: 1 s, 2 s, 4 s ... 15 minutes."""
    return min(BACKOFF_BASE_MS << min(locks - 1, 20), BACKOFF_MAX_MS)


def _seconds(ms: int) -> int:
    return max(1, math.ceil(ms / 1000))


class Lockouts:
    def __init__(self, js: JetStreamContext, namespace: str, clock: Clock) -> None:
        self.js = js
        self.bucket = bucket_name(namespace)
        self.clock = clock
        self.kv: KeyValue | None = None
        self._seen: dict[str, Counter] = {}
        self._pruned = 0
        self.warm = asyncio.Event()

    async def open(self) -> KeyValue:
        if self.kv is None:
            try:
                self.kv = await self.js.key_value(self.bucket)
            except BucketNotFoundError:
                self.kv = await self.js.create_key_value(
                    KeyValueConfig(bucket=self.bucket, ttl=FORGET_MS / 1000, history=1)
                )
        return self.kv

    def retry_after(self, issuer_id: str, client_id: str, source: str | None) -> int:
        """Seconds until this pair may try again; 0 when it may now. Memory only."""
        if not self._seen:
            return 0
        counter = self._seen.get(key_for(issuer_id, client_id, source))
        if counter is None:
            return 0
        left = counter.locked_until - self.clock.now_ms()
        return _seconds(left) if left > 0 else 0

    async def failed(self, issuer_id: str, client_id: str, source: str | None) -> int:
        """Count one failure; the seconds the pair is now locked for (0: not locked)."""
        kv = await self.open()
        key = key_for(issuer_id, client_id, source)
        for _ in range(20):
            now = self.clock.now_ms()
            try:
                entry = await kv.get(key)
                counter, revision = _decode(entry.value or b"{}"), entry.revision
            except (KeyNotFoundError, KeyDeletedError):
                counter, revision = Counter(), None
            if now - counter.last > FORGET_MS:
                counter = Counter()
            counter.failures += 1
            counter.last = now
            locked_for = 0
            if counter.locked_until <= now and counter.failures >= MAX_FAILURES:
                counter.locks += 1
                locked_for = lock_ms(counter.locks)
                counter.locked_until = now + locked_for
            try:
                if revision is None:
                    await kv.create(key, _encode(counter))
                else:
                    await kv.update(key, _encode(counter), last=revision)
            except KeyWrongLastSequenceError:
                continue  # another worker counted a failure meanwhile: count on top of it
            self._seen[key] = counter
            if locked_for:
                log.warning(
                    "client.throttled", issuer_id=issuer_id, client_id=client_id[:64],
                    source=address_key(source), failures=counter.failures, lock_ms=locked_for,
                )  # fmt: skip
            left = counter.locked_until - now
            return _seconds(left) if left > 0 else 0
        return _seconds(BACKOFF_BASE_MS)  # a storm of concurrent failures: treat as locked

    async def succeeded(self, issuer_id: str, client_id: str, source: str | None) -> None:
        """Forget earlier failures, if this worker has seen any (no write otherwise)."""
        if not self._seen:
            return
        key = key_for(issuer_id, client_id, source)
        if self._seen.pop(key, None) is None:
            return
        kv = await self.open()
        with contextlib.suppress(Exception):
            await kv.delete(key)

    def prune(self) -> None:
        """Drop forgotten pairs from memory: the bucket's TTL removes them from NATS without
        telling the watchers."""
        now = self.clock.now_ms()
        self._pruned = now
        for key, counter in list(self._seen.items()):
            if now - counter.last > FORGET_MS and counter.locked_until <= now:
                del self._seen[key]

    async def follow(self, stop: asyncio.Event) -> None:
        """Worker task: mirror the bucket in memory."""
        kv = await self.open()
        watcher = await kv.watchall()
        try:
            while not stop.is_set():
                if self.clock.now_ms() - self._pruned > PRUNE_EVERY_MS:
                    self.prune()
                try:
                    entry = await watcher.updates(timeout=1.0)
                except (TimeoutError, nats.errors.TimeoutError):
                    self.warm.set()
                    continue
                if entry is None:  # end of the initial values
                    self.warm.set()
                    continue
                if entry.operation in ("DEL", "PURGE") or not entry.value:
                    self._seen.pop(entry.key, None)
                else:
                    with contextlib.suppress(msgspec.DecodeError):
                        self._seen[entry.key] = _decode(entry.value)
        finally:
            await watcher.stop()
