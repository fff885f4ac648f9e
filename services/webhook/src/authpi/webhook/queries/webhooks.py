"""Read-side SQL over webhooks_view and webhook_secrets: the Core API's reads (every one scoped
by account, so an id of another account names nothing), and what the delivery engine reads:
`targets` / `target` (webhooks with their delivery settings, defaults applied) and
`credentials` (the plaintext signing secrets and bearer token, unsealed with the KEK). The SQL
of the secrets a write stores sits here too (`SecretSql`), so that handlers hold no SQL."""

from __future__ import annotations

import functools
from typing import Any, LiteralString

import msgspec
import psycopg
from psycopg.rows import class_row, tuple_row

from authpi.crypto.envelope import Kek, unseal
from authpi.eventstore.sqltext import render
from authpi.web.pagination import TimeIdKey
from authpi.webhook.domain.options import (
    DISABLE_AFTER_SECONDS,
    FAILURE_THRESHOLD,
    MAX_ATTEMPTS,
    PROBE_INTERVAL_SECONDS,
)

SIGNATURE = "signature"
BEARER = "bearer"


class WebhookRow(msgspec.Struct, kw_only=True):
    id: str
    account_id: str
    name: str
    description: str | None
    url: str
    status: str
    status_at: int | None
    status_reason: str | None
    status_by: str | None
    auth_type: str
    auth: dict[str, Any]
    events: list[str] | None
    subjects: list[dict[str, str]] | None
    retry: dict[str, Any] | None
    circuit_breaker: dict[str, Any] | None
    metadata: dict[str, Any]
    created_at: int
    updated_at: int | None


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """A webhook as deliveries see it."""

    id: str
    account_id: str
    url: str
    status: str  # active | failing | disabled | deleted
    auth_type: str  # none | bearer | signature | bearer+signature
    events: frozenset[str] | None  # None = every type (platform.md 7.3)
    subjects: list[dict[str, str]] | None
    max_attempts: int  # retry.max_attempts, default 8 (1..20)
    failure_threshold: int  # circuit_breaker, default 20
    probe_interval_seconds: int  # default 900
    disable_after_seconds: int  # default 259200 (72 h): failing that long -> disabled


class Credentials(msgspec.Struct, frozen=True):
    signature_secrets: list[str]  # plaintext whs_…, newest first; the previous one for 24 h
    bearer_token: str | None


_COLUMNS = (
    "id, account_id, name, description, url, status, status_at, status_reason, status_by,"
    " auth_type, auth, events, subjects, retry, circuit_breaker, metadata, created_at,"
    " updated_at"
)

_LIST = (
    "SELECT " + _COLUMNS + " FROM {schema}.webhooks_view"
    " WHERE account_id = %(account_id)s"
    "  AND (%(webhook_id)s::text IS NULL OR id = %(webhook_id)s)"
    "  AND (CASE WHEN %(status)s::text IS NULL THEN status <> 'deleted'"
    "       ELSE status = %(status)s END)"
    "  AND (%(after_at)s::bigint IS NULL OR (created_at, id) < (%(after_at)s, %(after_id)s))"
    " ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
)

_TARGETS = (
    "SELECT id, account_id, url, status, auth_type, events, subjects, retry, circuit_breaker"
    " FROM {schema}.webhooks_view WHERE status <> 'deleted'"
)
_TARGET = (
    "SELECT id, account_id, url, status, auth_type, events, subjects, retry, circuit_breaker"
    " FROM {schema}.webhooks_view WHERE id = %s"
)
_SECRETS = (
    "SELECT kind, serial, wrapped_key, sealed FROM {schema}.webhook_secrets"
    " WHERE webhook_id = %s AND (retires_at IS NULL OR retires_at > %s)"
    " ORDER BY serial DESC"
)


class WebhookQueries:
    def __init__(self, schema: str) -> None:
        self._list = render(_LIST, schema=schema)

    async def webhooks(
        self,
        conn: psycopg.AsyncConnection[Any],
        account_id: str,
        status: str | None,
        after: TimeIdKey | None,
        limit: int,
        webhook_id: str | None = None,
    ) -> list[WebhookRow]:
        params = {"account_id": account_id, "webhook_id": webhook_id, "status": status,
                  "after_at": after and after[0], "after_id": after and after[1],
                  "limit": limit}  # fmt: skip
        cur = conn.cursor(row_factory=class_row(WebhookRow))
        await cur.execute(self._list, params)
        return await cur.fetchall()

    async def webhook(
        self, conn: psycopg.AsyncConnection[Any], account_id: str, webhook_id: str
    ) -> WebhookRow | None:
        """A webhook of the account that is not deleted."""
        rows = await self.webhooks(conn, account_id, None, None, 1, webhook_id)
        return rows[0] if rows else None


class SecretSql:
    """What a write does to webhook_secrets, in the transaction of its event."""

    def __init__(self, schema: str) -> None:
        self.insert: LiteralString = render(
            "INSERT INTO {schema}.webhook_secrets (webhook_id, kind, serial, wrapped_key, sealed,"
            " hint, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (webhook_id, kind, serial) DO NOTHING",
            schema=schema,
        )
        # A regenerated secret: the current one of its kind retires at %s (the overlap), and
        # every one retired before stops at once, so at most two sign.
        self.retire: LiteralString = render(
            "WITH gone AS (DELETE FROM {schema}.webhook_secrets WHERE webhook_id = %(id)s"
            "  AND kind = %(kind)s AND retires_at IS NOT NULL)"
            " UPDATE {schema}.webhook_secrets SET retires_at = %(retires_at)s"
            " WHERE webhook_id = %(id)s AND kind = %(kind)s AND retires_at IS NULL",
            schema=schema,
        )
        self.drop_kind: LiteralString = render(
            "DELETE FROM {schema}.webhook_secrets WHERE webhook_id = %s AND kind = %s",
            schema=schema,
        )
        self.drop_all: LiteralString = render(
            "DELETE FROM {schema}.webhook_secrets WHERE webhook_id = %s", schema=schema
        )


@functools.cache
def _sql(schema: str) -> tuple[LiteralString, LiteralString, LiteralString]:
    return (
        render(_TARGETS, schema=schema),
        render(_TARGET, schema=schema),
        render(_SECRETS, schema=schema),
    )


def secret_context(webhook_id: str, kind: str, serial: int) -> str:
    """What a secret's data key and ciphertext are bound to: this webhook, kind and serial."""
    return f"authpi.webhook-secret:{webhook_id}:{kind}:{serial}"


def _target(row: tuple[Any, ...]) -> Target:
    webhook_id, account_id, url, status, auth_type, events, subjects, retry, breaker = row
    retry = retry or {}
    breaker = breaker or {}
    return Target(
        id=webhook_id, account_id=account_id, url=url, status=status, auth_type=auth_type,
        events=None if events is None else frozenset(events), subjects=subjects,
        max_attempts=retry.get("max_attempts") or MAX_ATTEMPTS,
        failure_threshold=breaker.get("failure_threshold") or FAILURE_THRESHOLD,
        probe_interval_seconds=breaker.get("probe_interval_seconds") or PROBE_INTERVAL_SECONDS,
        disable_after_seconds=breaker.get("disable_after_seconds") or DISABLE_AFTER_SECONDS,
    )  # fmt: skip


async def targets(conn: psycopg.AsyncConnection[Any], schema: str) -> list[Target]:
    """Every webhook that is not deleted."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_sql(schema)[0])
    return [_target(row) for row in await cur.fetchall()]


async def target(conn: psycopg.AsyncConnection[Any], schema: str, webhook_id: str) -> Target | None:
    """One webhook, deleted ones included (status `deleted`); None when it never existed."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_sql(schema)[1], [webhook_id])
    row = await cur.fetchone()
    return None if row is None else _target(row)


async def credentials(
    conn: psycopg.AsyncConnection[Any], schema: str, kek: Kek, webhook_id: str, now_ms: int
) -> Credentials:
    """The secrets that sign and authorize a delivery attempted at `now_ms`: every signing
    secret still in force (the newest first; after a regeneration the previous one too, for 24
    hours) and the bearer token."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_sql(schema)[2], [webhook_id, now_ms])
    signature: list[str] = []
    bearer: str | None = None
    for kind, serial, wrapped_key, sealed in await cur.fetchall():
        context = secret_context(webhook_id, kind, serial)
        plain = unseal(kek.unwrap(wrapped_key, context), sealed, context.encode()).decode()
        if kind == SIGNATURE:
            signature.append(plain)
        elif bearer is None:
            bearer = plain
    return Credentials(signature_secrets=signature, bearer_token=bearer)
