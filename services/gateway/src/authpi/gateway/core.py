"""The gateway as a process part: the API-key and personal-token caches, the platform issuer's
public keys (console users' access tokens), the account check, the idempotency store and the
rate-limit buckets, and the Core API app built with them in front of every service's routes
(handled in this process, or forwarded to the service's own: the distributed topology).
What it knows of other services comes from its own reactions to their events
(`gateway-directory`, `gateway-platform-keys`), never from their tables (DESIGN.md 2)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from authpi.contracts.facts import ApiKeyVerified
from authpi.gateway.api.keyinfo import KeyInfo
from authpi.gateway.caches.accounts import AccountLookup
from authpi.gateway.caches.api_keys import ApiKeyCache, CachedKey
from authpi.gateway.caches.balances import AccountBalances
from authpi.gateway.caches.organizations import OrganizationStatuses
from authpi.gateway.caches.personal_tokens import PersonalTokenCache
from authpi.gateway.caches.platform_keys import PlatformKeys
from authpi.gateway.edge.authn import Authenticator, Bearers
from authpi.gateway.edge.consistency import ReadYourWritesLayer
from authpi.gateway.edge.direct_reads import DirectReads
from authpi.gateway.edge.forward import Forwarder, ForwardLayer
from authpi.gateway.edge.idempotency import IdempotencyStore
from authpi.gateway.edge.layers import AuthenticationLayer, IdempotencyLayer, RateLimitLayer
from authpi.gateway.edge.payments import PaymentGate, PaymentGateLayer
from authpi.gateway.edge.personal_tokens import PersonalTokenVerifier
from authpi.gateway.edge.ratelimit import RateLimits, TokenBuckets
from authpi.gateway.edge.user_tokens import UserTokenVerifier
from authpi.gateway.reactions.billing import BillingReaction
from authpi.gateway.reactions.directory import DirectoryReaction
from authpi.gateway.reactions.platform_keys import PlatformKeysReaction
from authpi.messaging.follower import Feed
from authpi.messaging.publisher import FactPublisher
from authpi.web.app import Metrics, ReadyCheck, WebApp
from authpi.web.core import build_core_app
from authpi.web.edge import EdgeSigner, keys_of
from authpi.web.runtime import Runtime, Task
from authpi.web.supervisor import supervise


class KeyChecks:
    """What checks an API key's own credentials, on either port: the API-key and organization
    caches (followers tracked for read-your-writes) and the metered fact of each success. The
    Core API's authentication uses it, and so does `GET /{issuer_id}/keyinfo` on the IdP port,
    which the token process serves in the distributed topology (gateway.service `KEYINFO`)."""

    def __init__(self, rt: Runtime, feed: Feed) -> None:
        self.api_keys = ApiKeyCache(feed)
        self.organizations = OrganizationStatuses(feed)
        self.followers = [self.api_keys.follower, self.organizations.follower]
        # Each successful API-key check is a metered fact (platform.md 5.5), batched like the
        # token endpoint's; nothing on the request path waits for NATS.
        self.facts = FactPublisher(rt.js, rt.namespace)
        self.verified = self.key_verified if rt.settings.billing_metering else None

    def key_verified(self, key: CachedKey, now_ms: int) -> None:
        self.facts.add(ApiKeyVerified(account_id=key.account_id, key_id=key.id, verified_at=now_ms))

    def keyinfo(self, rt: Runtime) -> KeyInfo:
        return KeyInfo(
            self.api_keys, rt.clock, rt.settings.idp_url, self.organizations,
            verified=self.verified,
        )  # fmt: skip

    def worker_tasks(self) -> list[tuple[str, Task]]:
        return [
            ("gateway:api-keys", self.api_keys.run),
            ("gateway:organizations", self.organizations.run),
            ("gateway:facts", self.facts.run),
        ]

    def warm(self) -> list[asyncio.Event]:
        return [self.api_keys.warm, self.organizations.warm]


class Gateway:
    def __init__(
        self,
        rt: Runtime,
        *,
        limits: RateLimits | None = None,
    ) -> None:
        schema = rt.schema("gateway")
        # Fed once per deployment; the caches below load them and follow the stream themselves.
        self.directory_reaction = DirectoryReaction(schema)
        self.platform_keys_reaction = PlatformKeysReaction(schema)
        self.billing_reaction = BillingReaction(schema)
        feed = Feed(rt.pool, rt.js, rt.namespace, schema)
        self.keys = KeyChecks(rt, feed)
        self.api_keys = self.keys.api_keys
        self.organizations = self.keys.organizations
        self.accounts = AccountLookup(feed)
        self.platform_keys = PlatformKeys(feed)
        self.personal_tokens = PersonalTokenCache(feed)
        self.balances = AccountBalances(feed)
        caches = (self.accounts, self.platform_keys, self.personal_tokens, self.balances)
        self.followers = [*self.keys.followers, *(cache.follower for cache in caches)]
        for follower in self.followers:
            rt.sync.track(follower)  # a Core API write waits for them (read-your-writes)
        self.sync = rt.sync
        bearers = Bearers(
            users=UserTokenVerifier(self.platform_keys, rt.clock, rt.settings.idp_url),
            personal=PersonalTokenVerifier(self.personal_tokens, rt.clock),
        )
        self.authenticator = Authenticator(
            self.api_keys, rt.clock, bearers, self.organizations, verified=self.keys.verified
        )
        self.authentication = AuthenticationLayer(self.authenticator, self.accounts)
        self.payment_gate = PaymentGate(
            enforced=rt.settings.billing_enforcement, balances=self.balances,
            api_url=rt.settings.api_url,
        )  # fmt: skip
        self.idempotency = IdempotencyStore(rt.pool, schema, rt.clock, rt.kek)
        self.buckets = TokenBuckets(limits or RateLimits(), rt.clock)
        # The distributed topology: Core API requests of services in other processes go there.
        self.forwarder = Forwarder(
            dict(rt.settings.service_urls), EdgeSigner(keys_of(rt.kek), rt.clock)
        )

    @property
    def reactions(self) -> list[Any]:
        """The consumers run once per deployment."""
        return [self.directory_reaction, self.platform_keys_reaction, self.billing_reaction]

    def worker_tasks(self) -> list[tuple[str, Task]]:
        """What every process that serves the Core API runs: the in-memory followers."""
        return [
            *self.keys.worker_tasks(),
            ("gateway:accounts", self.accounts.run),
            ("gateway:platform-keys", self.platform_keys.run),
            ("gateway:personal-tokens", self.personal_tokens.run),
            ("gateway:balances", self.balances.run),
            ("gateway:forwarder", self.forwarder.run),
        ]

    def warm(self) -> list[asyncio.Event]:
        return [
            *self.keys.warm(),
            self.accounts.warm,
            self.platform_keys.warm,
            self.personal_tokens.warm,
            self.balances.warm,
        ]

    @contextlib.asynccontextmanager
    async def running(self, timeout: float = 30.0) -> AsyncIterator[Gateway]:
        """Run the worker tasks for the block, entered once warm (a gateway built beside a
        running platform: tests, tools). Once stopped, the deployment's writes no longer wait
        for its caches."""
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(supervise(name, task, stop), name=name)
            for name, task in self.worker_tasks()
        ]
        try:
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in self.warm())), timeout)
            yield self
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            for follower in self.followers:
                self.sync.untrack(follower)

    def layers(self, forward: frozenset[str] = frozenset()) -> list[Any]:
        """Outermost first. The routes of the services in `forward` (in other processes) are
        answered by the innermost layer, which forwards them; the rest reach their handler."""
        forwarding = [ForwardLayer(self.forwarder, forward)] if forward else []
        return [
            ReadYourWritesLayer(self.sync),
            RateLimitLayer(self.buckets),
            self.authentication,
            PaymentGateLayer(self.payment_gate),
            IdempotencyLayer(self.idempotency),
            *forwarding,
        ]

    def core_app(
        self,
        route_handlers: Sequence[Any],
        ready: ReadyCheck,
        metrics: Metrics | None = None,
        *,
        forward: frozenset[str] = frozenset(),
    ) -> WebApp:
        """The Core API port. `forward`: the services whose routes are forwarded to their own
        process (AUTHPI_SERVICE_URLS); empty in the all-in-one, where every handler runs here."""
        missing = sorted(forward - self.forwarder.services)
        if missing:
            raise RuntimeError(f"AUTHPI_SERVICE_URLS names no URL for: {', '.join(missing)}")
        # The hottest reads are answered in front of litestar's router, after the same checks.
        direct = DirectReads(self.buckets, self.authentication, forward)
        return build_core_app(
            route_handlers=route_handlers, ready=ready, middleware=self.layers(forward),
            metrics=metrics, outer=direct.wrap,
        )  # fmt: skip
