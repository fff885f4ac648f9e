"""Token buckets per (client IP, endpoint class) (core-api.md 2.5)."""

from __future__ import annotations

import pytest

from authpi.crypto.clock import FixedClock
from authpi.errors import RateLimited
from authpi.gateway.edge.ratelimit import RateLimits, TokenBuckets


def test_a_full_minute_can_burst_then_refills_at_the_rate():
    clock = FixedClock()
    buckets = TokenBuckets(RateLimits(write=60), clock)
    for _ in range(60):
        buckets.take("10.0.0.1", "write")
    with pytest.raises(RateLimited) as caught:
        buckets.take("10.0.0.1", "write")
    assert caught.value.retry_after == 1 and caught.value.retryable
    clock.advance(seconds=1)
    buckets.take("10.0.0.1", "write")


def test_clients_and_classes_have_their_own_buckets():
    buckets = TokenBuckets(RateLimits(read=1, write=1), FixedClock())
    buckets.take("10.0.0.1", "write")
    buckets.take("10.0.0.2", "write")
    buckets.take("10.0.0.1", "read")
    with pytest.raises(RateLimited):
        buckets.take("10.0.0.1", "write")


def test_retry_after_is_whole_seconds_until_a_token():
    buckets = TokenBuckets(RateLimits(auth_sensitive=2), FixedClock())
    buckets.take("ip", "auth-sensitive")
    buckets.take("ip", "auth-sensitive")
    with pytest.raises(RateLimited) as caught:
        buckets.take("ip", "auth-sensitive")
    assert caught.value.retry_after == 30


def test_disabled_limits_never_refuse():
    buckets = TokenBuckets(RateLimits(write=1, enabled=False), FixedClock())
    for _ in range(10):
        buckets.take("ip", "write")
