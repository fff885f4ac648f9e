"""webhooks_view: the inline projection of the webhook streams (same transaction as the events).
A deleted webhook keeps its row with status `deleted`. Every row change NOTIFYs
`<schema>_webhooks` (a trigger, migration 0002), so the delivery engine's cache reloads at once."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.contracts.webhook import (
    WebhookCreated,
    WebhookDeleted,
    WebhookPaused,
    WebhookResumed,
    WebhookUpdated,
)
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent


def _json_or_null(value: object) -> str | None:
    return None if value is None else jsonb.dumps(value)


class WebhooksView:
    name = "webhook-webhooks"
    event_types = (
        "webhook.created",
        "webhook.updated",
        "webhook.deleted",
        "webhook.paused",
        "webhook.resumed",
    )

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._insert = render(
            "INSERT INTO {schema}.webhooks_view (id, account_id, name, description, url, status,"
            " status_at, status_reason, status_by, auth_type, auth, events, subjects, retry,"
            " circuit_breaker, metadata, stream_version, created_at) VALUES (%s, %s, %s, %s, %s,"
            " %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb, %s::jsonb, %s::jsonb,"
            " %s::jsonb, %s, %s) ON CONFLICT (id) DO NOTHING",
            schema=schema,
        )
        self._update = render(
            "UPDATE {schema}.webhooks_view SET name = %s, description = %s, url = %s,"
            " auth_type = %s, auth = %s::jsonb, events = %s::jsonb, subjects = %s::jsonb,"
            " retry = %s::jsonb, circuit_breaker = %s::jsonb, metadata = %s::jsonb,"
            " stream_version = %s, updated_at = %s WHERE id = %s",
            schema=schema,
        )
        self._status = render(
            "UPDATE {schema}.webhooks_view SET status = %s, status_at = %s, status_reason = %s,"
            " status_by = %s, stream_version = %s, updated_at = %s WHERE id = %s",
            schema=schema,
        )
        self._reset = render("TRUNCATE {schema}.webhooks_view", schema=schema)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        version = stored.stream_version
        match stored.event:
            case WebhookCreated() as e:
                await conn.execute(self._insert, [
                    e.id, e.account_id, e.name, e.description, e.url, e.status, e.status_at,
                    e.status_reason, e.status_by, e.auth.type, jsonb.dumps(e.auth),
                    _json_or_null(e.events), _json_or_null(e.subjects), _json_or_null(e.retry),
                    _json_or_null(e.circuit_breaker), jsonb.dumps(e.metadata), version,
                    e.created_at])  # fmt: skip
            case WebhookUpdated() as e:
                await conn.execute(self._update, [
                    e.name, e.description, e.url, e.auth.type, jsonb.dumps(e.auth),
                    _json_or_null(e.events), _json_or_null(e.subjects), _json_or_null(e.retry),
                    _json_or_null(e.circuit_breaker), jsonb.dumps(e.metadata), version,
                    e.updated_at, e.id])  # fmt: skip
            case WebhookPaused() | WebhookResumed() as e:
                await conn.execute(self._status, [
                    e.status, e.status_at, e.status_reason, e.status_by, version, e.status_at,
                    e.id])  # fmt: skip
            case WebhookDeleted() as e:
                await conn.execute(self._status, [
                    "deleted", e.deleted_at, None, None, version, e.deleted_at, e.id])  # fmt: skip
            case _:
                return

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)
