"""signing_keys_view: the public side of every SigningKey (kid, alg, public JWK, status), an
inline projection of signing-key events. The JWKS cache loads from it."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.contracts.token import SigningKeyCreated, SigningKeyRetired
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent


class SigningKeysView:
    name = "token-signing-keys"
    event_types = ("signing-key.created", "signing-key.retired")

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._insert = render(
            "INSERT INTO {schema}.signing_keys_view (kid, issuer_id, account_id, alg, public_jwk,"
            " status, created_at) VALUES (%s, %s, %s, %s, %s::jsonb, 'active', %s)"
            " ON CONFLICT (kid) DO NOTHING",
            schema=schema,
        )
        self._retire = render(
            "UPDATE {schema}.signing_keys_view SET status = 'retired', retired_at = %s"
            " WHERE kid = %s",
            schema=schema,
        )
        self._reset = render("TRUNCATE {schema}.signing_keys_view", schema=schema)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case SigningKeyCreated() as e:
                await conn.execute(
                    self._insert,
                    [
                        e.kid,
                        e.issuer_id,
                        e.account_id,
                        e.alg,
                        jsonb.dumps(e.public_jwk),
                        e.created_at,
                    ],
                )
            case SigningKeyRetired() as e:
                await conn.execute(self._retire, [e.retired_at, e.kid])
            case _:
                return

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)
