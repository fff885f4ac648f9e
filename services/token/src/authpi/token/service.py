"""The token service as a process part: the issuers it learns from directory events, their
signing keys (creation, monthly rotation, JWKS) and the IdP discovery routes. Further IdP
endpoints arrive with their issues."""

from __future__ import annotations

from pathlib import Path

from authpi.token.api.discovery import discovery_routes
from authpi.token.cache import KeyCache
from authpi.token.handlers import KeyRing
from authpi.token.reactions.issuers import IssuersReaction
from authpi.token.signing import TokenSigner
from authpi.web.runtime import Runtime, ServiceModule, ServiceParts

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


async def build(rt: Runtime) -> ServiceParts:
    schema = rt.schema("token")
    keys = KeyRing(rt, schema)
    cache = KeyCache(rt.pool, rt.dsn, rt.kek, keys.sql)
    await cache.load_all()
    return ServiceParts(
        name="token",
        idp_routes=discovery_routes(cache, rt.settings.idp_url),
        projections=[IssuersReaction(schema, keys)],
        inline_projections=[keys.view],
        tasks=[("token:key-cache", cache.follow), ("token:key-rotation", keys.rotation_task)],
        exports={"keys": keys, "key_cache": cache, "signer": TokenSigner(cache, rt.clock)},
    )


MODULE = ServiceModule(name="token", migrations=MIGRATIONS, build=build)
