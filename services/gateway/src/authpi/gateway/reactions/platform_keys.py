"""gateway-platform-keys: the public keys of AuthPI's own issuer, for console users' access
tokens, learnt from the token service's events into the gateway's own schema (it never reads the
token service's tables, DESIGN.md 2)."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.contracts.console import PLATFORM_ISSUER_ID
from authpi.contracts.token import SigningKeyCreated, SigningKeyRetired
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent

PLATFORM_KEYS_CONSUMER = "gateway-platform-keys"


class PlatformKeysReaction:
    """gateway-platform-keys: the public signing keys of AuthPI's own issuer (console users'
    access tokens, core-api.md 1.2) from the token service's `signing-key.*` events, into
    platform_keys_view. Keys of customer issuers are skipped: the Core API accepts no token of
    theirs. A retired key stays in the view, marked retired. Each row keeps the stream version
    of its last event; an event at or below it changes nothing."""

    name = PLATFORM_KEYS_CONSUMER
    event_types = ("signing-key.created", "signing-key.retired")

    def __init__(self, schema: str) -> None:
        self.schema = schema

        self._insert = render(
            "INSERT INTO {schema}.platform_keys_view (kid, alg, public_jwk, status, created_at,"
            " version) VALUES (%s, %s, %s::jsonb, 'active', %s, %s) ON CONFLICT (kid) DO NOTHING",
            schema=schema,
        )
        self._retire = render(
            "UPDATE {schema}.platform_keys_view SET status = 'retired', version = %s"
            " WHERE kid = %s AND version < %s",
            schema=schema,
        )
        self._reset = render("TRUNCATE {schema}.platform_keys_view", schema=schema)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        version = stored.stream_version
        match stored.event:
            case SigningKeyCreated() as e if e.issuer_id == PLATFORM_ISSUER_ID:
                jwk = jsonb.dumps(e.public_jwk)
                await conn.execute(self._insert, [e.kid, e.alg, jwk, e.created_at, version])
            case SigningKeyRetired() as e if e.issuer_id == PLATFORM_ISSUER_ID:
                await conn.execute(self._retire, [version, e.kid, version])

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)
