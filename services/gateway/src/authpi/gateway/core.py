"""The gateway as a process part: the API-key cache, the idempotency store and the rate-limit
buckets, and the Core API app built with them in front of every service's routes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from authpi.gateway.accounts import AccountLookup
from authpi.gateway.api_keys import ApiKeyCache
from authpi.gateway.authn import Authenticator, BearerVerifier, RefuseBearer
from authpi.gateway.idempotency import IdempotencyStore
from authpi.gateway.layers import AuthenticationLayer, IdempotencyLayer, RateLimitLayer
from authpi.gateway.ratelimit import RateLimits, TokenBuckets
from authpi.web.app import ReadyCheck, WebApp
from authpi.web.core import build_core_app
from authpi.web.runtime import Runtime


class Gateway:
    def __init__(
        self,
        rt: Runtime,
        *,
        limits: RateLimits | None = None,
        bearer: BearerVerifier | None = None,
    ) -> None:
        # The key cache and the account check read the directory's views (DESIGN.md 5).
        directory = rt.schema("directory")
        self.api_keys = ApiKeyCache(
            pool=rt.pool, js=rt.js, namespace=rt.namespace, source_schema=directory
        )
        self.accounts = AccountLookup(rt.pool, directory)
        self.authenticator = Authenticator(self.api_keys, rt.clock, bearer or RefuseBearer())
        self.idempotency = IdempotencyStore(rt.pool, rt.schema("gateway"), rt.clock, rt.kek)
        self.buckets = TokenBuckets(limits or RateLimits(), rt.clock)

    async def start(self) -> None:
        await self.api_keys.start()

    async def follow(self, stop: asyncio.Event) -> None:
        """Background task: keep the key cache subscribed until the process stops."""
        try:
            await stop.wait()
        finally:
            await self.api_keys.stop()

    def layers(self) -> list[Any]:
        return [
            RateLimitLayer(self.buckets),
            AuthenticationLayer(self.authenticator, self.accounts),
            IdempotencyLayer(self.idempotency),
        ]

    def core_app(self, route_handlers: Sequence[Any], ready: ReadyCheck) -> WebApp:
        return build_core_app(route_handlers=route_handlers, ready=ready, middleware=self.layers())
