"""api_keys_view: inline projection of ApiKey events (digests only, never secrets)."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
from psycopg import sql

from authpi.contracts.directory import (
    ApiKeyBlocked,
    ApiKeyCreated,
    ApiKeyDeleted,
    ApiKeyUnblocked,
)
from authpi.eventstore.store import StoredEvent

_json = msgspec.json.Encoder()


def _j(value: object) -> str:
    return _json.encode(value).decode()


class ApiKeysView:
    name = "directory-api-keys"
    event_types = (
        "api-key.created",
        "api-key.updated",
        "api-key.blocked",
        "api-key.unblocked",
        "api-key.deleted",
    )

    def __init__(self, schema: str) -> None:
        self.schema = schema
        q = sql.Identifier(schema)
        self._insert = sql.SQL(
            "INSERT INTO {}.api_keys_view (id, account_id, org_id, issuer_id, name, description,"
            " tags, scopes, ip_allowlist, expires_at, metadata, status, secret_sha256,"
            " secret_hint, version, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb,"
            " %s::jsonb, %s::jsonb, %s, %s::jsonb, 'active', %s, %s, %s, %s)"
            " ON CONFLICT (id) DO NOTHING"
        ).format(q)
        self._status = sql.SQL(
            "UPDATE {}.api_keys_view SET status = %s, status_at = %s, status_reason = %s,"
            " status_by = %s, version = %s, updated_at = %s WHERE id = %s"
        ).format(q)
        self._delete = sql.SQL("DELETE FROM {}.api_keys_view WHERE id = %s").format(q)
        self._reset = sql.SQL("TRUNCATE {}.api_keys_view").format(q)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case ApiKeyCreated() as e:
                await conn.execute(
                    self._insert,
                    [e.id, e.account_id, e.org_id, e.issuer_id, e.name, e.description, _j(e.tags),
                     _j(e.scopes), _j(e.ip_allowlist), e.expires_at, _j(e.metadata),
                     e.secret_sha256, e.secret_hint, stored.stream_version, e.created_at],
                )  # fmt: skip
            case ApiKeyBlocked() | ApiKeyUnblocked() as e:
                await conn.execute(
                    self._status,
                    [e.status, e.status_at, e.status_reason, e.status_by, stored.stream_version,
                     e.status_at, e.id],
                )  # fmt: skip
            case ApiKeyDeleted() as e:
                await conn.execute(self._delete, [e.id])

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)
