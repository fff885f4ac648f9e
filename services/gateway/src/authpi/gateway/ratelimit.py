"""Rate limits (core-api.md 2.5): a token bucket per (client IP, endpoint class), the classes
`read` (GET/HEAD), `write` (other methods) and `auth-sensitive` (routes that say so with
`opt={RATE_CLASS: AUTH_SENSITIVE}`), by default 1200, 300 and 120 requests a minute, each able to
burst a full minute's worth. Over the limit -> 429 `rate_limited` with `Retry-After` (whole
seconds) and `retry_after`.

The buckets live in process memory: with N processes a client gets up to N times the limit.
Thresholds are operational, not part of the contract; an upstream proxy may do the job instead
(`RateLimits(enabled=False)`)."""

from __future__ import annotations

import math

import msgspec

from authpi.crypto.clock import Clock
from authpi.errors import RateLimited
from authpi.web.opts import AUTH_SENSITIVE, READ, WRITE, RateClass

_PRUNE_AT = 50_000  # tracked buckets before idle (full) ones are dropped


class RateLimits(msgspec.Struct, frozen=True, kw_only=True):
    read: int = 1200  # per minute and client IP
    write: int = 300
    auth_sensitive: int = 120
    enabled: bool = True

    def scaled(self, factor: float) -> RateLimits:
        return msgspec.structs.replace(
            self,
            read=int(self.read * factor),
            write=int(self.write * factor),
            auth_sensitive=int(self.auth_sensitive * factor),
        )

    def per_minute(self, rate_class: RateClass) -> int:
        return {READ: self.read, WRITE: self.write, AUTH_SENSITIVE: self.auth_sensitive}[rate_class]


class TokenBuckets:
    def __init__(self, limits: RateLimits, clock: Clock) -> None:
        self.limits = limits
        self._clock = clock
        self._buckets: dict[tuple[str, RateClass], tuple[float, int]] = {}

    def take(self, client: str, rate_class: RateClass) -> None:
        """Spend one token, or raise RateLimited with the seconds until one is available."""
        if not self.limits.enabled:
            return
        capacity = float(self.limits.per_minute(rate_class))
        per_ms = capacity / 60_000
        now = self._clock.now_ms()
        tokens = self._level((client, rate_class), capacity, per_ms, now)
        if tokens < 1:
            retry_after = max(1, math.ceil((1 - tokens) / per_ms / 1000))
            raise RateLimited(
                "too many requests; retry later",
                reason=f"rate_limit.{rate_class}",
                retry_after=retry_after,
            )
        self._buckets[(client, rate_class)] = (tokens - 1, now)
        if len(self._buckets) > _PRUNE_AT:
            self._prune(now)

    def _level(self, key: tuple[str, RateClass], capacity: float, per_ms: float, now: int) -> float:
        tokens, since = self._buckets.get(key, (capacity, now))
        return min(capacity, tokens + (now - since) * per_ms)

    def _prune(self, now: int) -> None:
        for key, (tokens, since) in list(self._buckets.items()):
            capacity = float(self.limits.per_minute(key[1]))
            if tokens + (now - since) * capacity / 60_000 >= capacity:
                del self._buckets[key]
