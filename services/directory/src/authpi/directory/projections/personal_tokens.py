"""personal_tokens_view: inline projection of personal-token events (digests only, never the
token). Deleted tokens leave the view."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.contracts.directory import (
    PersonalTokenCreated,
    PersonalTokenDeleted,
    PersonalTokenUpdated,
)
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent


class PersonalTokensView:
    name = "directory-personal-tokens"
    event_types = (
        "user.personal-token.created",
        "user.personal-token.updated",
        "user.personal-token.deleted",
    )

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._insert = render(
            "INSERT INTO {schema}.personal_tokens_view (id, account_id, issuer_id, user_id, name,"
            " description, tags, scopes, audience, expires_at, metadata, jti, token_sha256,"
            " token_hint, status, version, created_at) VALUES (%s, %s, %s, %s, %s, %s,"
            " %s::jsonb, %s::jsonb, %s, %s, %s::jsonb, %s, %s, %s, 'active', %s, %s)"
            " ON CONFLICT (id) DO NOTHING",
            schema=schema,
        )
        self._status = render(
            "UPDATE {schema}.personal_tokens_view SET status = coalesce(%s, status),"
            " status_at = %s, status_reason = %s, status_by = %s, version = %s,"
            " updated_at = %s WHERE id = %s",
            schema=schema,
        )
        self._delete = render(
            "DELETE FROM {schema}.personal_tokens_view WHERE id = %s", schema=schema
        )
        self._reset = render("TRUNCATE {schema}.personal_tokens_view", schema=schema)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case PersonalTokenCreated() as e:
                await conn.execute(
                    self._insert,
                    [
                        e.id,
                        e.account_id,
                        e.issuer_id,
                        e.user_id,
                        e.name,
                        e.description,
                        jsonb.dumps(e.tags),
                        jsonb.dumps(e.scopes),
                        e.audience,
                        e.expires_at,
                        jsonb.dumps(e.metadata),
                        e.jti,
                        e.token_sha256,
                        e.token_hint,
                        stored.stream_version,
                        e.created_at,
                    ],
                )
            case PersonalTokenUpdated() as e:
                await conn.execute(
                    self._status,
                    [
                        e.status,
                        e.updated_at,
                        e.status_reason,
                        e.status_by,
                        stored.stream_version,
                        e.updated_at,
                        e.id,
                    ],
                )
            case PersonalTokenDeleted() as e:
                await conn.execute(self._delete, [e.id])

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)
