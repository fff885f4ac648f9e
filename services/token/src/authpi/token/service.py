"""The token service as a process part: the issuers and clients it learns from directory events,
their signing keys (creation, monthly rotation, JWKS), the discovery routes and the machine
endpoints (token, introspection, revocation).

Per process (every HTTP worker): the key cache, the client cache (loaded from clients_view, then
following client.* events with its own ordered consumer), the throttle mirror and the
fact publisher. Per deployment: the projections token-issuers and token-clients, key rotation
and the sweep of expired revocations."""

from __future__ import annotations

from pathlib import Path

from authpi.eventstore.store import EventStore
from authpi.messaging.entries import EntryCache
from authpi.messaging.follower import Feed
from authpi.token.agents import AGENT_EVENTS, agents_projection
from authpi.token.api.discovery import discovery_routes
from authpi.token.api.machine import MachineEndpoints
from authpi.token.cache import KeyCache
from authpi.token.clients import CLIENT_EVENTS, clients_projection
from authpi.token.facts import FactPublisher
from authpi.token.grants import ClientCredentialsGrant
from authpi.token.handlers import KeyRing
from authpi.token.lockout import Lockouts
from authpi.token.oauth import ClientAuthenticator
from authpi.token.reactions.issuers import IssuersReaction
from authpi.token.revocation import Revocations, TokenVerifier
from authpi.token.signing import TokenSigner
from authpi.web.runtime import Runtime, ServiceModule, ServiceParts

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


async def build(rt: Runtime) -> ServiceParts:
    schema = rt.schema("token")
    idp_base = rt.settings.idp_url
    keys = KeyRing(rt, schema)
    await keys.ensure_platform_issuer()
    cache = KeyCache(rt.pool, rt.dsn, rt.kek, keys.sql)
    feed = Feed(rt.pool, rt.js, rt.namespace, schema)
    clients_view = clients_projection(schema)
    clients = EntryCache(feed, clients_view, CLIENT_EVENTS)
    agents_view = agents_projection(schema)
    agents = EntryCache(feed, agents_view, AGENT_EVENTS)
    for progress in (cache, clients.follower, agents.follower):
        rt.sync.track(progress)  # a Core API write waits for them (read-your-writes)
    lockouts = Lockouts(rt.js, rt.namespace, rt.clock)
    await lockouts.open()
    facts = FactPublisher(rt.js, rt.namespace)
    revocations = Revocations(
        rt.pool, EventStore(rt.pool, schema, "token", rt.ids), schema, rt.clock
    )
    machine = MachineEndpoints(
        idp_base=idp_base,
        keys=cache,
        auth=ClientAuthenticator(clients, agents, lockouts, rt.clock),
        client_credentials=ClientCredentialsGrant(idp_base, rt.clock, facts),
        verifier=TokenVerifier(idp_base, rt.clock),
        revocations=revocations,
    )
    return ServiceParts(
        name="token",
        idp_routes=[*discovery_routes(cache, idp_base), *machine.routes()],
        projections=[IssuersReaction(schema, keys), clients_view, agents_view],
        inline_projections=[keys.view, revocations.view],
        tasks=[
            ("token:key-rotation", keys.rotation_task),
            ("token:revocation-sweeper", revocations.run_sweeper),
        ],
        worker_tasks=[
            ("token:key-cache", cache.follow),
            ("token:clients", clients.run),
            ("token:agents", agents.run),
            ("token:lockouts", lockouts.follow),
            ("token:facts", facts.run),
        ],
        warm=[cache.warm, clients.warm, agents.warm, lockouts.warm],
        exports={
            "keys": keys, "key_cache": cache, "signer": TokenSigner(cache, rt.clock),
            "clients": clients, "agents": agents, "facts": facts, "revocations": revocations,
        },
    )  # fmt: skip


MODULE = ServiceModule(name="token", migrations=MIGRATIONS, build=build)
