"""clients_view: inline projection of Client events (secret digests only, never secrets). A
rotation moves the current digest to `previous_sha256`, valid until `previous_valid_until`; a
delete keeps the row with status `deleted` (lists can still ask for it)."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.contracts.directory import (
    ClientBlocked,
    ClientCreated,
    ClientDeleted,
    ClientSecretRotated,
    ClientUnblocked,
    ClientUpdated,
)
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent


class ClientsView:
    name = "directory-clients"
    event_types = (
        "client.created",
        "client.updated",
        "client.secret.rotated",
        "client.blocked",
        "client.unblocked",
        "client.deleted",
    )

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._insert = render(
            "INSERT INTO {schema}.clients_view (id, issuer_id, name, type, confidential,"
            " description, logo_url, status, config, metadata, secret_sha256, secret_hint, version,"
            " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s,"
            " %s, %s) ON CONFLICT (id) DO NOTHING",
            schema=schema,
        )
        self._update = render(
            "UPDATE {schema}.clients_view SET name = %s, description = %s, logo_url = %s,"
            " config = %s::jsonb, metadata = %s::jsonb, version = %s, updated_at = %s"
            " WHERE id = %s",
            schema=schema,
        )
        self._status = render(
            "UPDATE {schema}.clients_view SET status = %s, status_at = %s, status_reason = %s,"
            " status_by = %s, version = %s, updated_at = %s WHERE id = %s",
            schema=schema,
        )
        self._rotate = render(
            "UPDATE {schema}.clients_view SET previous_sha256 = %s, previous_valid_until = %s,"
            " secret_sha256 = %s, secret_hint = %s, secret_rotated_at = %s, version = %s,"
            " updated_at = %s WHERE id = %s",
            schema=schema,
        )
        self._reset = render("TRUNCATE {schema}.clients_view", schema=schema)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        v = stored.stream_version
        match stored.event:
            case ClientCreated() as e:
                await conn.execute(self._insert, [
                    e.id, e.issuer_id, e.name, e.client_type, e.confidential, e.description,
                    e.logo_url, e.status, jsonb.dumps(e.config), jsonb.dumps(e.metadata),
                    e.secret_sha256, e.secret_hint, v, e.created_at])  # fmt: skip
            case ClientUpdated() as e:
                await conn.execute(self._update, [
                    e.name, e.description, e.logo_url, jsonb.dumps(e.config),
                    jsonb.dumps(e.metadata), v, e.updated_at, e.id])  # fmt: skip
            case ClientBlocked() | ClientUnblocked() as e:
                await conn.execute(self._status, [
                    e.status, e.status_at, e.status_reason, e.status_by, v, e.status_at,
                    e.id])  # fmt: skip
            case ClientSecretRotated() as e:
                await conn.execute(self._rotate, [
                    e.previous_secret_sha256, e.previous_valid_until, e.secret_sha256,
                    e.secret_hint, e.secret_rotated_at, v, e.secret_rotated_at,
                    e.id])  # fmt: skip
            case ClientDeleted() as e:
                await conn.execute(self._status, [
                    "deleted", e.deleted_at, None, None, v, e.deleted_at, e.id])  # fmt: skip

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)
