"""Rate limits on both ports: a token bucket per (client address, endpoint class), each able to
burst a full minute's worth. The address is the one `authpi.web.addresses` derives (trusted
proxies only), bucketed by `address_key` (an IPv6 client by its /64).

- Core API (core-api.md 2.5): the classes `read` (GET/HEAD), `write` (other methods) and
  `auth-sensitive` (routes that say so with `opt={RATE_CLASS: AUTH_SENSITIVE}`), by default 1200,
  300 and 120 requests a minute. Over the limit -> 429 `rate_limited` with `Retry-After` (whole
  seconds) and `retry_after`, in the spec's error body.
- IdP API (idp-api.md 1.5, "Rate limiting"): the class `token` (token, introspection, revocation,
  keyinfo; AUTHPI_IDP_RATE_LIMIT, 6000 a minute by default) and `read` (discovery, JWKS, twice
  that). Over the limit -> 429 with `Retry-After` and an RFC 6749-shaped body
  `{"error": "rate_limited", "error_description": ...}`.

The buckets live in process memory, one dict lookup per request and no I/O: with N processes a
client gets up to N times the limit. Thresholds are operational, not part of the contract; both
scale with AUTHPI_RATE_LIMIT_MULTIPLIER, and an upstream proxy may do the job instead
(`enabled=False`)."""

from __future__ import annotations

import math
from typing import Any, Protocol

import msgspec

from authpi.crypto.clock import Clock
from authpi.errors import RateLimited
from authpi.web.addresses import address_key
from authpi.web.oauth import NO_STORE, RawResponse
from authpi.web.opts import ANONYMOUS, AUTH_SENSITIVE, READ, WRITE, RateClass

_PRUNE_AT = 50_000  # tracked buckets before idle (full) ones are dropped


class Limits(Protocol):
    @property
    def enabled(self) -> bool: ...

    def per_minute(self, rate_class: str) -> int: ...


class RateLimits(msgspec.Struct, frozen=True, kw_only=True):
    read: int = 1200  # per minute and client address
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

    def per_minute(self, rate_class: str) -> int:
        return {READ: self.read, WRITE: self.write, AUTH_SENSITIVE: self.auth_sensitive}[rate_class]


TOKEN = "token"  # the IdP class of the credential endpoints
IDP_TOKEN_ENDPOINTS = frozenset({"token", "introspect", "revoke", "keyinfo"})


class IdpRateLimits(msgspec.Struct, frozen=True, kw_only=True):
    token: int = 6000  # per minute and client address
    read: int = 12000
    enabled: bool = True

    def scaled(self, factor: float) -> IdpRateLimits:
        return msgspec.structs.replace(
            self, token=int(self.token * factor), read=int(self.read * factor)
        )

    def per_minute(self, rate_class: str) -> int:
        return self.token if rate_class == TOKEN else self.read


class TokenBuckets:
    def __init__(self, limits: Limits, clock: Clock) -> None:
        self.limits = limits
        self._clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, int]] = {}
        self._prune_at = _PRUNE_AT

    def take(self, client: str | None, rate_class: RateClass) -> None:
        """Spend one token, or raise RateLimited with the seconds until one is available."""
        retry_after = self.retry_after(client, rate_class)
        if retry_after:
            raise RateLimited(
                "too many requests; retry later",
                reason=f"rate_limit.{rate_class}",
                retry_after=retry_after,
            )

    def retry_after(self, client: str | None, rate_class: str) -> int:
        """Spend one token and answer 0, or answer the whole seconds until one is available."""
        if not self.limits.enabled:
            return 0
        capacity = float(self.limits.per_minute(rate_class))
        per_ms = capacity / 60_000
        now = self._clock.now_ms()
        key = (address_key(client), rate_class)
        tokens = self._level(key, capacity, per_ms, now)
        if tokens < 1:
            return max(1, math.ceil((1 - tokens) / per_ms / 1000)) if per_ms > 0 else 60
        self._buckets[key] = (tokens - 1, now)
        if len(self._buckets) > self._prune_at:
            self._prune(now)
        return 0

    def _level(self, key: tuple[str, str], capacity: float, per_ms: float, now: int) -> float:
        tokens, since = self._buckets.get(key, (capacity, now))
        return min(capacity, tokens + (now - since) * per_ms)

    def _prune(self, now: int) -> None:
        for key, (tokens, since) in list(self._buckets.items()):
            capacity = float(self.limits.per_minute(key[1]))
            if tokens + (now - since) * capacity / 60_000 >= capacity:
                del self._buckets[key]
        # Many busy clients: prune again only once the map has doubled, so that the O(n) pass
        # stays amortised O(1) per request.
        self._prune_at = max(_PRUNE_AT, 2 * len(self._buckets))


_TOO_MANY = msgspec.json.encode(
    {"error": "rate_limited", "error_description": "too many requests; retry later"}
)


def too_many(retry_after: int) -> RawResponse:
    """429 in the IdP's OAuth error form (idp-api.md 1.5)."""
    return RawResponse(429, _TOO_MANY, {**NO_STORE, "Retry-After": str(retry_after)})


class IdpRateLimit:
    """The IdP port's limiter, as litestar middleware on every route but the anonymous
    operational ones (health, readiness, metrics)."""

    def __init__(self, limits: IdpRateLimits, clock: Clock) -> None:
        self.buckets = TokenBuckets(limits, clock)

    def refusal(self, scope: Any, endpoint: str) -> RawResponse | None:
        """The 429 for a request to `endpoint` (the last segment of its path) when its client
        address is over the limit of the endpoint's class, else None (and it is counted)."""
        rate_class = TOKEN if endpoint in IDP_TOKEN_ENDPOINTS else READ
        client = scope.get("client")
        retry_after = self.buckets.retry_after(client[0] if client else None, rate_class)
        return too_many(retry_after) if retry_after else None

    def middleware(self, app: Any) -> Any:
        """For the routed requests; the direct routes (authpi.web.direct) call `refusal`."""
        refusal = self.refusal

        async def limited(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and not scope["route_handler"].opt.get(ANONYMOUS):
                refused = refusal(scope, scope["path"].rstrip("/").rsplit("/", 1)[-1])
                if refused is not None:
                    await refused(scope, receive, send)
                    return
            await app(scope, receive, send)

        return limited
