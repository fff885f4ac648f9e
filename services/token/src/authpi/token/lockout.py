"""Client-secret lockout (idp-api.md 1.5, core-api.md 1.2 rule 9): 5 failed secrets within 15
minutes lock the client for 15 minutes; while locked even the right secret is refused.

The counters are ephemeral data (DESIGN.md 3), so they live in a NATS KV bucket with a 15-minute
TTL, shared by every worker process. Only a *failure* writes (a compare-and-set update, retried
on conflict, so concurrent failures in several workers all count). Every worker watches the
bucket and keeps the entries in memory, so the success path checks a dict and writes nothing;
it clears a counter only when it sees one."""

from __future__ import annotations

import asyncio
import contextlib

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
from authpi.observability import get_logger

log = get_logger("authpi.token.lockout")

MAX_FAILURES = 5
WINDOW_MS = 15 * 60 * 1000
LOCK_MS = 15 * 60 * 1000


class Counter(msgspec.Struct, kw_only=True):
    failures: list[int] = []  # Unix ms of recent failures
    locked_until: int = 0


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Counter).decode


def bucket_name(namespace: str) -> str:
    return f"{namespace.replace('.', '_')}_client_lockouts"


def key_for(issuer_id: str, client_id: str) -> str:
    return f"{issuer_id}.{client_id}"


def _safe(client_id: str) -> bool:
    return 0 < len(client_id) <= 128 and all(c.isalnum() or c in "_-" for c in client_id)


class Lockouts:
    def __init__(self, js: JetStreamContext, namespace: str, clock: Clock) -> None:
        self.js = js
        self.bucket = bucket_name(namespace)
        self.clock = clock
        self.kv: KeyValue | None = None
        self._seen: dict[str, Counter] = {}
        self.warm = asyncio.Event()

    async def open(self) -> KeyValue:
        if self.kv is None:
            try:
                self.kv = await self.js.key_value(self.bucket)
            except BucketNotFoundError:
                self.kv = await self.js.create_key_value(
                    KeyValueConfig(bucket=self.bucket, ttl=LOCK_MS / 1000, history=1)
                )
        return self.kv

    def locked(self, issuer_id: str, client_id: str) -> bool:
        counter = self._seen.get(key_for(issuer_id, client_id))
        return counter is not None and counter.locked_until > self.clock.now_ms()

    async def failed(self, issuer_id: str, client_id: str) -> bool:
        """Count one failure; True when the client is (now) locked."""
        if not _safe(client_id):
            return False  # not a client id we issue: nothing to lock
        kv = await self.open()
        key = key_for(issuer_id, client_id)
        for _ in range(20):
            now = self.clock.now_ms()
            try:
                entry = await kv.get(key)
                counter, revision = _decode(entry.value or b"{}"), entry.revision
            except (KeyNotFoundError, KeyDeletedError):
                counter, revision = Counter(), None
            counter.failures = [t for t in counter.failures if t > now - WINDOW_MS] + [now]
            if len(counter.failures) >= MAX_FAILURES and counter.locked_until <= now:
                counter.locked_until = now + LOCK_MS
                log.warning("client.locked", issuer_id=issuer_id, client_id=client_id)
            try:
                if revision is None:
                    await kv.create(key, _encode(counter))
                else:
                    await kv.update(key, _encode(counter), last=revision)
            except KeyWrongLastSequenceError:
                continue  # another worker counted a failure meanwhile: count on top of it
            self._seen[key] = counter
            return counter.locked_until > now
        return True  # a storm of concurrent failures: treat as locked

    async def succeeded(self, issuer_id: str, client_id: str) -> None:
        """Forget earlier failures, if this worker has seen any (no write otherwise)."""
        key = key_for(issuer_id, client_id)
        counter = self._seen.get(key)
        if counter is None or not counter.failures:
            return
        self._seen.pop(key, None)
        kv = await self.open()
        with contextlib.suppress(Exception):
            await kv.delete(key)

    async def follow(self, stop: asyncio.Event) -> None:
        """Worker task: mirror the bucket in memory."""
        kv = await self.open()
        watcher = await kv.watchall()
        try:
            while not stop.is_set():
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
