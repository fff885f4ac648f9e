"""api_keys_view: inline projection of ApiKey events (digests only, never secrets).

`api-key.updated` carries only what changed: a field is written when its value is present;
`description` and `expires_at` (nullable) when named in `changed`; a status with its time, reason
and actor; a new secret digest moves the current one to `previous_sha256`, valid until
`previous_valid_until` (rotation grace). The gateway's key cache applies the same rules."""

from __future__ import annotations

from typing import Any, LiteralString

import psycopg
from psycopg import sql

from authpi.contracts.directory import (
    ApiKeyBlocked,
    ApiKeyCreated,
    ApiKeyDeleted,
    ApiKeyUnblocked,
    ApiKeyUpdated,
)
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent


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
        self._insert = render(
            "INSERT INTO {schema}.api_keys_view (id, account_id, org_id, issuer_id, name,"
            " description, tags, scopes, ip_allowlist, expires_at, metadata, status,"
            " secret_sha256,"
            " secret_hint, version, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb,"
            " %s::jsonb, %s::jsonb, %s, %s::jsonb, 'active', %s, %s, %s, %s)"
            " ON CONFLICT (id) DO NOTHING",
            schema=schema,
        )
        self._status = render(
            "UPDATE {schema}.api_keys_view SET status = %s, status_at = %s, status_reason = %s,"
            " status_by = %s, version = %s, updated_at = %s WHERE id = %s",
            schema=schema,
        )
        self._delete = render("DELETE FROM {schema}.api_keys_view WHERE id = %s", schema=schema)
        self._reset = render("TRUNCATE {schema}.api_keys_view", schema=schema)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case ApiKeyCreated() as e:
                await conn.execute(
                    self._insert,
                    [e.id, e.account_id, e.org_id, e.issuer_id, e.name, e.description,
                     jsonb.dumps(e.tags), jsonb.dumps(e.scopes), jsonb.dumps(e.ip_allowlist),
                     e.expires_at, jsonb.dumps(e.metadata), e.secret_sha256, e.secret_hint,
                     stored.stream_version, e.created_at],
                )  # fmt: skip
            case ApiKeyBlocked() | ApiKeyUnblocked() as e:
                await conn.execute(
                    self._status,
                    [e.status, e.status_at, e.status_reason, e.status_by, stored.stream_version,
                     e.status_at, e.id],
                )  # fmt: skip
            case ApiKeyUpdated() as e:
                values = _assignments(e, stored.stream_version)
                await conn.execute(self._update_query(values), [*values.values(), e.id])
            case ApiKeyDeleted() as e:
                await conn.execute(self._delete, [e.id])

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)

    def _update_query(self, values: dict[str, object]) -> LiteralString:
        sets = [
            sql.SQL("{} = %s{}").format(sql.Identifier(column), sql.SQL(_CASTS.get(column, "")))
            for column in values
        ]
        if "secret_sha256" in values:  # right-hand sides read the row before the update
            sets.insert(0, sql.SQL("previous_sha256 = secret_sha256"))
        return render(
            "UPDATE {schema}.api_keys_view SET {sets} WHERE id = %s",
            schema=self.schema,
            sets=sql.SQL(", ").join(sets),
        )


_CASTS = {"tags": "::jsonb", "scopes": "::jsonb", "ip_allowlist": "::jsonb", "metadata": "::jsonb"}


def _assignments(e: ApiKeyUpdated, version: int) -> dict[str, object]:
    """Column -> new value for one update, in a fixed order."""
    values: dict[str, object] = {}
    present = {"name": e.name, "tags": e.tags, "scopes": e.scopes,
               "ip_allowlist": e.ip_allowlist, "metadata": e.metadata}  # fmt: skip
    for column, value in present.items():
        if value is not None:
            values[column] = jsonb.dumps(value) if column in _CASTS else value
    for column, value in (("description", e.description), ("expires_at", e.expires_at)):
        if column in e.changed:
            values[column] = value
    if e.status is not None:
        values.update(status=e.status, status_at=e.updated_at, status_reason=e.status_reason,
                      status_by=e.status_by)  # fmt: skip
    if e.secret_sha256 is not None:
        values.update(secret_sha256=e.secret_sha256, secret_hint=e.secret_hint,
                      previous_valid_until=e.previous_valid_until,
                      last_rotated_at=e.updated_at)  # fmt: skip
    return {**values, "version": version, "updated_at": e.updated_at}
