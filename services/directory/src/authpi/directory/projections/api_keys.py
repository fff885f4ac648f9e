"""api_keys_view: inline projection of ApiKey events (digests only, never secrets).

An event on an existing key writes the columns `api_key_state.changes` names: the one fold of
the api-key events, which the decider and the gateway's key cache and view use too (a new secret
digest moves the current one to `previous_sha256`, valid until `previous_valid_until`)."""

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
from authpi.contracts.directory.api_key_state import CARRIED, changes
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
            case ApiKeyUpdated() | ApiKeyBlocked() | ApiKeyUnblocked() as e:
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
        for field, source in CARRIED:  # right-hand sides read the row before the update
            if source in values:
                sets.insert(0, sql.SQL("{} = {}").format(*map(sql.Identifier, (field, source))))
        return render(
            "UPDATE {schema}.api_keys_view SET {sets} WHERE id = %s",
            schema=self.schema,
            sets=sql.SQL(", ").join(sets),
        )


_CASTS = {"tags": "::jsonb", "scopes": "::jsonb", "ip_allowlist": "::jsonb", "metadata": "::jsonb"}


def _assignments(
    e: ApiKeyUpdated | ApiKeyBlocked | ApiKeyUnblocked, version: int
) -> dict[str, object]:
    """Column -> new value for one change, in a fixed order."""
    values = {c: jsonb.dumps(v) if c in _CASTS else v for c, v in changes(e).items()}
    return {**values, "version": version}
