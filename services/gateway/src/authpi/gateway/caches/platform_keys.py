"""The public keys of AuthPI's own issuer (console users' access tokens, core-api.md 1.2), in
every process that serves the Core API. Loaded from the gateway's own platform_keys_view (fed by
its `gateway-platform-keys` reaction from the token service's `signing-key.*` events) with that
consumer's checkpoint, then kept by following the stream from there (`FollowedCache`), like the
API-key cache. It never reads the token service's tables (DESIGN.md 2) and never holds a private
key. A token naming a key id this process has not seen yet waits, bounded, when that id (a
UUIDv7) was minted a moment ago: right after a rotation the token service signs with a key whose
event may still be on its way (idp-api.md 13.3, unknown-kid handling). Any other unknown id is
refused at once."""

from __future__ import annotations

from typing import Any

import jwt
import msgspec
import psycopg
from psycopg import sql

from authpi.contracts.base import Envelope, Event
from authpi.contracts.console import PLATFORM_ISSUER_ID
from authpi.contracts.token import SigningKeyCreated, SigningKeyRetired
from authpi.gateway.caches.arrivals import Arrivals
from authpi.gateway.reactions.platform_keys import PLATFORM_KEYS_CONSUMER
from authpi.messaging.follower import Feed, FollowedCache
from authpi.observability import get_logger

log = get_logger("authpi.gateway.platform_keys")

MISS_WAIT_S = 2.0  # as for API keys (api_keys.MISS_WAIT_S)
MAX_WAITING = 256


class PlatformKey(msgspec.Struct, frozen=True, kw_only=True):
    kid: str
    alg: str
    key: Any  # the public key (cryptography), from the JWK
    retired: bool = False


def _public_key(kid: str, alg: str, jwk: dict[str, Any]) -> PlatformKey | None:
    try:
        parsed = jwt.PyJWK(jwk, algorithm=alg)
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        log.error("platform_key.unusable", kid=kid, alg=alg, error=str(exc))
        return None
    return PlatformKey(kid=kid, alg=alg, key=parsed.key)


def _arrival_id(kid: str) -> str:
    # Key ids are UUIDv7 (`Ids.event_uuid`): as a `kid_<32 hex>` id, `Arrivals` reads their age.
    return "kid_" + kid.replace("-", "")


class PlatformKeys(FollowedCache):
    """The platform issuer's public keys, in every process that serves the Core API."""

    def __init__(
        self,
        feed: Feed,
        *,
        consumer: str = PLATFORM_KEYS_CONSUMER,
        miss_wait: float = MISS_WAIT_S,
    ) -> None:
        self._keys: dict[str, PlatformKey] = {}
        self._retired: set[str] = set()
        self._miss_wait = miss_wait
        self._arrivals = Arrivals("kid", limit=MAX_WAITING)
        self._load_query = sql.SQL(
            "SELECT kid, alg, public_jwk, status FROM {}.platform_keys_view"
        ).format(sql.Identifier(feed.schema))
        super().__init__(feed, consumer=consumer, event_types="signing-key.*")

    def get(self, kid: str) -> PlatformKey | None:
        return self._keys.get(kid)

    async def lookup(self, kid: str) -> PlatformKey | None:
        """The key, retired or not; awaited (bounded) when it may have been created a moment
        ago; None when unknown."""
        key = self._keys.get(kid)
        if key is not None or kid in self._retired:
            return key
        if not kid.isprintable() or len(kid) > 64:
            return None
        await self._arrivals.wait(_arrival_id(kid), self._miss_wait, lambda: kid in self._keys)
        return self._keys.get(kid)

    async def load(self, conn: psycopg.AsyncConnection[Any]) -> None:
        cur = await conn.execute(self._load_query)
        keys: dict[str, PlatformKey] = {}
        for kid, alg, jwk, status in await cur.fetchall():
            key = _public_key(kid, alg, jwk)
            if key is not None:
                keys[kid] = msgspec.structs.replace(key, retired=status == "retired")
        self._keys = keys
        self._arrivals.recheck()
        log.info("platform_keys.loaded", keys=len(keys))

    def receive(self, env: Envelope, event: Event) -> None:
        match event:
            case SigningKeyCreated() if event.issuer_id == PLATFORM_ISSUER_ID:
                if event.kid not in self._keys and event.kid not in self._retired:
                    key = _public_key(event.kid, event.alg, event.public_jwk)
                    if key is not None:
                        self._keys[event.kid] = key
                self._arrivals.arrived(_arrival_id(event.kid))
            case SigningKeyRetired() if event.issuer_id == PLATFORM_ISSUER_ID:
                self._retired.add(event.kid)
                key = self._keys.get(event.kid)
                if key is not None:
                    self._keys[event.kid] = msgspec.structs.replace(key, retired=True)
                self._arrivals.arrived(_arrival_id(event.kid))
            case _:
                pass  # another issuer's key
