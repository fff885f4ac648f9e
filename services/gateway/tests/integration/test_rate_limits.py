"""Rate limits per client IP and endpoint class (core-api.md 2.5), on a gateway built with tiny
limits over the running platform."""

from __future__ import annotations

import httpx

from authpi.directory.api.me import get_me
from authpi.gateway.core import Gateway
from authpi.gateway.edge.ratelimit import RateLimits
from authpi.platform.testing.tenants import basic


async def test_over_the_limit_is_429_with_retry_after(platform, serve):
    gateway = Gateway(platform.handle.rt, limits=RateLimits(read=2, write=2, auth_sensitive=1))
    sync = platform.handle.rt.sync
    async with gateway.running(), serve(gateway.core_app([get_me], platform.handle.ready)) as url:
        assert all(follower in sync.progress for follower in gateway.followers)
        async with httpx.AsyncClient(base_url=url) as http:
            auth = basic(platform.api_key_id, platform.api_key_secret)
            codes = [(await http.get("/v1/me", headers=auth)).status_code for _ in range(2)]
            limited = await http.get("/v1/me", headers=auth)
            health = await http.get("/healthz")
    assert codes == [200, 200]
    assert limited.status_code == 429
    body = limited.json()
    assert body["error"] == "rate_limited" and body["retryable"] is True
    assert int(limited.headers["retry-after"]) == body["retry_after"] >= 1
    assert health.status_code == 200
    # Stopped, its caches no longer hold up the platform's writes (read-your-writes).
    assert not any(follower in sync.progress for follower in gateway.followers)
