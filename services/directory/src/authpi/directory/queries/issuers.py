"""Read-side SQL over issuers_view, issuer_auth_methods_view and clients_view. Lists are newest
first by (created_at, id); filters are bound parameters of constant statements (a null filter
selects everything)."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
from psycopg.rows import class_row

from authpi.eventstore.sqltext import render
from authpi.web.pagination import SortKey, time_id_key


class IssuerRow(msgspec.Struct, kw_only=True):
    id: str
    account_id: str
    name: str
    description: str | None
    links: dict[str, Any]
    available_scopes: list[str]
    status: str
    status_at: int | None
    settings: dict[str, Any]
    metadata: dict[str, Any]
    created_at: int
    updated_at: int | None
    access_mode: str | None = None
    branding_configured: bool = False
    auth_method_count: int = 0
    enabled_login_method_count: int = 0
    enabled_signup_method_count: int = 0
    available_scope_count: int = 0
    readiness: str = "incomplete"


class MethodRow(msgspec.Struct, kw_only=True):
    id: str
    issuer_id: str
    type: str
    provider: str | None
    name: str | None
    enabled: bool
    login: bool
    signup: bool
    settings: dict[str, Any]
    metadata: dict[str, Any]
    created_at: int
    updated_at: int | None


class ClientRow(msgspec.Struct, kw_only=True):
    id: str
    issuer_id: str
    name: str
    type: str
    confidential: bool
    description: str | None
    logo_url: str | None
    status: str
    status_at: int | None
    config: dict[str, Any]
    metadata: dict[str, Any]
    secret_rotated_at: int | None
    created_at: int
    updated_at: int | None
    readiness: str = "incomplete"


class IssuerFilters(msgspec.Struct, frozen=True, kw_only=True):
    q: str | None = None
    status: str | None = None
    access_mode: str | None = None
    readiness: str | None = None


class ClientFilters(msgspec.Struct, frozen=True, kw_only=True):
    q: str | None = None
    name: str | None = None
    status: str | None = None
    application_type: str | None = None
    readiness: str | None = None


_ISSUERS = """
SELECT * FROM (
  SELECT i.id, i.account_id, i.name, i.description, i.links, i.available_scopes, i.status,
    i.status_at, i.settings, i.metadata, i.created_at, i.updated_at, i.access_mode,
    i.branding_configured, coalesce(m.total, 0)::int AS auth_method_count,
    coalesce(m.login, 0)::int AS enabled_login_method_count,
    coalesce(m.signup, 0)::int AS enabled_signup_method_count,
    jsonb_array_length(i.available_scopes) AS available_scope_count,
    CASE WHEN coalesce(m.login, 0) > 0 AND EXISTS (SELECT 1 FROM {schema}.clients_view c
      WHERE c.issuer_id = i.id AND c.status <> 'deleted') THEN 'ready' ELSE 'incomplete' END
      AS readiness
  FROM {schema}.issuers_view i
  LEFT JOIN LATERAL (
    SELECT count(*) AS total, count(*) FILTER (WHERE enabled AND login) AS login,
      count(*) FILTER (WHERE enabled AND signup) AS signup
    FROM {schema}.issuer_auth_methods_view WHERE issuer_id = i.id) m ON true
  WHERE i.account_id = %(account_id)s AND (%(issuer_id)s::text IS NULL OR i.id = %(issuer_id)s)
) x
WHERE (%(q)s::text IS NULL OR x.name ILIKE %(q)s ESCAPE '\\')
  AND (%(status)s::text IS NULL OR x.status = %(status)s)
  AND (%(access_mode)s::text IS NULL OR x.access_mode = %(access_mode)s)
  AND (%(readiness)s::text IS NULL OR x.readiness = %(readiness)s)
  AND (%(after_at)s::bigint IS NULL OR (x.created_at, x.id) < (%(after_at)s, %(after_id)s))
ORDER BY x.created_at DESC, x.id DESC
LIMIT %(limit)s
"""

_METHODS = """
SELECT id, issuer_id, type, provider, name, enabled, login, signup, settings, metadata,
  created_at, updated_at
FROM {schema}.issuer_auth_methods_view
WHERE issuer_id = %(issuer_id)s AND (%(method_id)s::text IS NULL OR id = %(method_id)s)
ORDER BY created_at, id
"""

_CLIENTS = """
SELECT * FROM (
  SELECT id, issuer_id, name, type, confidential, description, logo_url, status, status_at,
    config, metadata, secret_rotated_at, created_at, updated_at,
    CASE WHEN status = 'active' AND (NOT config->'grant_types' ? 'authorization_code'
      OR jsonb_array_length(config->'redirect_uris') > 0) THEN 'ready' ELSE 'incomplete' END
      AS readiness
  FROM {schema}.clients_view
  WHERE issuer_id = %(issuer_id)s AND (%(client_id)s::text IS NULL OR id = %(client_id)s)
) x
WHERE (CASE WHEN %(status)s::text IS NULL THEN x.status <> 'deleted'
       ELSE x.status = %(status)s END)
  AND (%(q)s::text IS NULL OR x.name ILIKE %(q)s ESCAPE '\\' OR x.id = %(q_exact)s)
  AND (%(name)s::text IS NULL OR x.name ILIKE %(name)s ESCAPE '\\')
  AND (%(application_type)s::text IS NULL
       OR x.config->>'application_type' = %(application_type)s)
  AND (%(readiness)s::text IS NULL OR x.readiness = %(readiness)s)
  AND (%(after_at)s::bigint IS NULL OR (x.created_at, x.id) < (%(after_at)s, %(after_id)s))
ORDER BY x.created_at DESC, x.id DESC
LIMIT %(limit)s
"""

_LIVE_CLIENT_IDS = """
SELECT id FROM {schema}.clients_view WHERE issuer_id = %s AND status <> 'deleted' ORDER BY id
"""


def contains(text: str | None) -> str | None:
    """An ILIKE pattern for a case-insensitive substring match of `text`."""
    if text is None:
        return None
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _after(after: SortKey | None) -> dict[str, Any]:
    key = time_id_key(after)  # a cursor of another shape is a 400
    return {"after_at": key and key[0], "after_id": key and key[1]}


class IssuerQueries:
    def __init__(self, schema: str) -> None:
        self._issuers = render(_ISSUERS, schema=schema)
        self._methods = render(_METHODS, schema=schema)
        self._clients = render(_CLIENTS, schema=schema)
        self._live_client_ids = render(_LIVE_CLIENT_IDS, schema=schema)

    async def issuers(
        self,
        conn: psycopg.AsyncConnection[Any],
        account_id: str,
        filters: IssuerFilters,
        after: SortKey | None,
        limit: int,
    ) -> list[IssuerRow]:
        params = {"account_id": account_id, "issuer_id": None, "q": contains(filters.q),
                  "status": filters.status, "access_mode": filters.access_mode,
                  "readiness": filters.readiness, "limit": limit, **_after(after)}  # fmt: skip
        cur = conn.cursor(row_factory=class_row(IssuerRow))
        await cur.execute(self._issuers, params)
        return await cur.fetchall()

    async def issuer(
        self, conn: psycopg.AsyncConnection[Any], account_id: str, issuer_id: str
    ) -> IssuerRow | None:
        params = {"account_id": account_id, "issuer_id": issuer_id, "q": None, "status": None,
                  "access_mode": None, "readiness": None, "limit": 1, **_after(None)}  # fmt: skip
        cur = conn.cursor(row_factory=class_row(IssuerRow))
        await cur.execute(self._issuers, params)
        return await cur.fetchone()

    async def auth_methods(
        self, conn: psycopg.AsyncConnection[Any], issuer_id: str, method_id: str | None = None
    ) -> list[MethodRow]:
        cur = conn.cursor(row_factory=class_row(MethodRow))
        await cur.execute(self._methods, {"issuer_id": issuer_id, "method_id": method_id})
        return await cur.fetchall()

    async def clients(
        self,
        conn: psycopg.AsyncConnection[Any],
        issuer_id: str,
        filters: ClientFilters,
        after: SortKey | None,
        limit: int,
        client_id: str | None = None,
    ) -> list[ClientRow]:
        params = {"issuer_id": issuer_id, "client_id": client_id, "q": contains(filters.q),
                  "q_exact": filters.q, "name": contains(filters.name), "status": filters.status,
                  "application_type": filters.application_type, "readiness": filters.readiness,
                  "limit": limit, **_after(after)}  # fmt: skip
        cur = conn.cursor(row_factory=class_row(ClientRow))
        await cur.execute(self._clients, params)
        return await cur.fetchall()

    async def live_client_ids(
        self, conn: psycopg.AsyncConnection[Any], issuer_id: str
    ) -> list[str]:
        cur = await conn.execute(self._live_client_ids, [issuer_id])
        return [str(row[0]) for row in await cur.fetchall()]
