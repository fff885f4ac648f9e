"""integrator_credentials_view: the inline projection of the IntegratorCredential streams, from
which the NATS server's integrator users are rendered (public.integrators). Every change NOTIFYs
`<schema>_integrators` (a trigger, migration 0005)."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.contracts.webhook import IntegratorCredentialIssued, IntegratorCredentialRevoked
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent


class IntegratorCredentialsView:
    name = "webhook-integrator-credentials"
    event_types = ("integrator-credential.issued", "integrator-credential.revoked")

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._insert = render(
            "INSERT INTO {schema}.integrator_credentials_view (id, account_id, nats_user,"
            " password_bcrypt, name, status, issued_at, stream_version)"
            " VALUES (%s, %s, %s, %s, %s, 'active', %s, %s) ON CONFLICT (id) DO NOTHING",
            schema=schema,
        )
        self._revoke = render(
            "UPDATE {schema}.integrator_credentials_view SET status = 'revoked',"
            " revoked_at = %s, stream_version = %s WHERE id = %s",
            schema=schema,
        )
        self._reset = render("TRUNCATE {schema}.integrator_credentials_view", schema=schema)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case IntegratorCredentialIssued() as e:
                await conn.execute(self._insert, [
                    e.id, e.account_id, e.user, e.password_bcrypt, e.name, e.issued_at,
                    stored.stream_version])  # fmt: skip
            case IntegratorCredentialRevoked() as e:
                await conn.execute(self._revoke, [e.revoked_at, stored.stream_version, e.id])
            case _:
                return

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)
