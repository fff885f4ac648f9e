"""Failed credential verifications, throttled in a NATS KV bucket shared by every worker
process (idp-api.md 1.5 "Credential attempt throttling"). One machinery, two policies:

- `CLIENT_POLICY` (client secrets at the token endpoints): keyed by (issuer, client id, source
  address). Client ids are public, so a lock on the client alone would let anyone lock out a
  client or an agent; keyed by source, the failures of one address never refuse the right
  secret from another. The first 4 failures are free; the 5th locks the pair for 1 s, and each
  failure after a lock has ended locks it again for twice as long, up to 15 minutes.
- `CREDENTIAL_POLICY` (user passwords and one-time codes in the hosted portal): keyed by
  (issuer, username hash), not by source address, as the spec says: 5 failures lock that
  credential for 15 minutes.
- `MAIL_POLICY` (mail sent on request by the portal): the same keys and limits, counting mails
  sent instead of failures.

Failures racing in while a key is locked count, but do not lengthen the lock (a burst of
concurrent requests is one lock, not a doubling per request). A success clears the key, and a
key with no failure for 15 minutes starts again. Names that do not exist count the same way, so
the answers cannot tell which exist.

The counters are ephemeral data (DESIGN.md 3), so they live in NATS KV under an opaque key (a
digest of the parts). Only a *failure* writes (a compare-and-set update, retried on conflict, so
concurrent failures in several workers all count). Every worker watches the bucket and keeps the
entries in memory, so the success path checks a dict and writes nothing; it clears a counter
only when it sees one."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
import nats.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.errors import (
    BucketNotFoundError,
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
    ServiceUnavailableError,
)
from nats.js.kv import KeyValue

from authpi.crypto.clock import Clock
from authpi.crypto.ids import sha256_hex
from authpi.errors import TemporarilyUnavailable
from authpi.messaging.stopping import unless_stopped
from authpi.observability import get_logger
from authpi.web.addresses import address_key

log = get_logger("authpi.token.lockout")

MAX_FAILURES = 5  # the failure that locks first
BACKOFF_BASE_MS = 1000
BACKOFF_MAX_MS = 15 * 60 * 1000
FORGET_MS = 15 * 60 * 1000  # the bucket's TTL; no lock outlasts it
PRUNE_EVERY_MS = 60 * 1000
UNREACHABLE_TRIES = 3  # KV calls NATS did not answer before a failure is refused with a 503


class Counter(msgspec.Struct, kw_only=True):
    failures: int = 0
    locks: int = 0  # locks so far: the backoff's exponent
    last: int = 0  # Unix ms of the latest failure
    locked_until: int = 0


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Counter).decode


def lock_ms(locks: int) -> int:
    """How long the `locks`-th lock of a client lasts: 1 s, 2 s, 4 s ... 15 minutes."""
    return min(BACKOFF_BASE_MS << min(locks - 1, 20), BACKOFF_MAX_MS)


def fixed_lock_ms(locks: int) -> int:
    """Every lock of a user credential lasts 15 minutes (idp-api.md 1.5)."""
    return BACKOFF_MAX_MS


@dataclass(frozen=True)
class LockoutPolicy:
    bucket_suffix: str  # the bucket is `<namespace>_<suffix>` (messaging.auth.KV_BUCKETS)
    log_event: str
    lock_ms: Callable[[int], int]
    max_failures: int = MAX_FAILURES
    forget_ms: int = FORGET_MS  # the bucket's TTL: a key without failure that long starts again
    by_source: bool = True  # the source address is part of the key


CLIENT_POLICY = LockoutPolicy("client_lockouts", "client.throttled", lock_ms)
CREDENTIAL_POLICY = LockoutPolicy(
    "credential_lockouts", "credential.locked", fixed_lock_ms, by_source=False
)
# Mail the portal sends on request (password reset, login link), counted per (issuer, username
# hash): the 5th mail within 15 minutes is the last until they have passed, so nobody can flood
# an inbox (or the mail server's reputation) through the forms.
MAIL_POLICY = LockoutPolicy("mail_throttle", "mail.throttled", fixed_lock_ms, by_source=False)


POLICIES = (CLIENT_POLICY, CREDENTIAL_POLICY, MAIL_POLICY)
# What a KV call raises while NATS cannot answer for a moment; tried again, then a 503.
_TRANSIENT = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionClosedError,
    ServiceUnavailableError,
)


def bucket_config(namespace: str, policy: LockoutPolicy, replicas: int = 1) -> KeyValueConfig:
    return KeyValueConfig(
        bucket=bucket_name(namespace, policy), ttl=policy.forget_ms / 1000, history=1,
        replicas=replicas,
    )  # fmt: skip


async def declare_buckets(js: JetStreamContext, namespace: str, replicas: int | None) -> None:
    """The lockout buckets, declared ahead by `authpi streams` so that in a NATS cluster they
    keep as many copies as the streams (a lock must outlive the loss of a node). The token
    service creates a bucket it finds missing itself, with one copy; `replicas` None keeps an
    existing bucket's."""
    for policy in POLICIES:
        config = bucket_config(namespace, policy, replicas or 1)
        try:
            info = await js.stream_info(f"KV_{config.bucket}")
        except NotFoundError:
            await js.create_key_value(config)
            continue
        if replicas is not None and info.config.num_replicas != replicas:
            info.config.num_replicas = replicas
            await js.update_stream(info.config)


def bucket_name(namespace: str, policy: LockoutPolicy = CLIENT_POLICY) -> str:
    return f"{namespace.replace('.', '_')}_{policy.bucket_suffix}"


def key_for(issuer_id: str, name: str, source: str | None, by_source: bool = True) -> str:
    """An opaque KV key: client ids and addresses as sent may hold any character."""
    where = address_key(source) if by_source else "-"
    return sha256_hex(f"{issuer_id}\n{name}\n{where}")[:40]


def _seconds(ms: int) -> int:
    return max(1, math.ceil(ms / 1000))


class Lockouts:
    """The counters of one policy. `name` is what is verified (a client id, a username hash);
    `source` the client address, ignored by policies not keyed by source."""

    def __init__(
        self,
        js: JetStreamContext,
        namespace: str,
        clock: Clock,
        policy: LockoutPolicy = CLIENT_POLICY,
    ) -> None:
        self.js = js
        self.policy = policy
        self.namespace = namespace
        self.bucket = bucket_name(namespace, policy)
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
                self.kv = await self.js.create_key_value(bucket_config(self.namespace, self.policy))
        return self.kv

    def _key(self, issuer_id: str, name: str, source: str | None) -> str:
        return key_for(issuer_id, name, source, self.policy.by_source)

    def retry_after(self, issuer_id: str, name: str, source: str | None = None) -> int:
        """Seconds until this key may try again; 0 when it may now. Memory only."""
        if not self._seen:
            return 0
        counter = self._seen.get(self._key(issuer_id, name, source))
        if counter is None:
            return 0
        left = counter.locked_until - self.clock.now_ms()
        return _seconds(left) if left > 0 else 0

    async def failed(self, issuer_id: str, name: str, source: str | None = None) -> int:
        """Count one failure; the seconds the key is now locked for (0: not locked)."""
        kv = await self.open()
        policy = self.policy
        key = self._key(issuer_id, name, source)
        unreachable = 0
        for _ in range(20):
            if unreachable == UNREACHABLE_TRIES:
                break
            now = self.clock.now_ms()
            try:
                entry = await kv.get(key)
                counter, revision = _decode(entry.value or b"{}"), entry.revision
            except (KeyNotFoundError, KeyDeletedError):
                counter, revision = Counter(), None
            except _TRANSIENT:
                unreachable += 1
                await asyncio.sleep(0.05 * unreachable)
                continue
            if now - counter.last > policy.forget_ms:
                counter = Counter()
            counter.failures += 1
            counter.last = now
            locked_for = 0
            if counter.locked_until <= now and counter.failures >= policy.max_failures:
                counter.locks += 1
                locked_for = policy.lock_ms(counter.locks)
                counter.locked_until = now + locked_for
            try:
                if revision is None:
                    await kv.create(key, _encode(counter))
                else:
                    await kv.update(key, _encode(counter), last=revision)
            except KeyWrongLastSequenceError:
                continue  # another worker counted a failure meanwhile: count on top of it
            except _TRANSIENT:  # the write may or may not have counted: read and count again
                unreachable += 1
                await asyncio.sleep(0.05 * unreachable)
                continue
            self._seen[key] = counter
            if locked_for:
                log.warning(
                    policy.log_event, issuer_id=issuer_id, name=name[:64],
                    source=address_key(source), failures=counter.failures, lock_ms=locked_for,
                )  # fmt: skip
            left = counter.locked_until - now
            return _seconds(left) if left > 0 else 0
        if unreachable:
            # NATS did not answer (a node lost, a leader being elected, an overloaded host):
            # the failure could not be counted, so nothing is answered as if it had been. The
            # caller's refusal becomes a retryable 503 instead of an error without a cause.
            log.warning(policy.log_event + ".unavailable", issuer_id=issuer_id, tries=unreachable)
            raise TemporarilyUnavailable(
                "the attempt counter is not reachable; try again",
                reason="lockout.unavailable", retry_after=1,
            )  # fmt: skip
        return _seconds(BACKOFF_BASE_MS)  # a storm of concurrent failures: treat as locked

    async def succeeded(self, issuer_id: str, name: str, source: str | None = None) -> None:
        """Forget earlier failures, if this worker has seen any (no write otherwise)."""
        if not self._seen:
            return
        key = self._key(issuer_id, name, source)
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
            if now - counter.last > self.policy.forget_ms and counter.locked_until <= now:
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
                    entry = await unless_stopped(watcher.updates(timeout=1.0), stop)
                except (TimeoutError, nats.errors.TimeoutError):
                    self.warm.set()
                    continue
                if stop.is_set():
                    break
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
