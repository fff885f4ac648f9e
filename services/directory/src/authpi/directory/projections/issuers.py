"""issuers_view and issuer_auth_methods_view: inline projection of Issuer events. Created and
updated events carry the full snapshot, so both upsert the whole row; deleting an issuer drops
its row and its auth methods."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.contracts.directory import (
    AuthMethodCreated,
    AuthMethodDeleted,
    AuthMethodUpdated,
    IssuerCreated,
    IssuerDeleted,
    IssuerUpdated,
)
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent

_ISSUER_COLUMNS = (
    "id, account_id, name, description, links, available_scopes, status, status_at, settings,"
    " tokens, access_mode, branding_configured, metadata, version, created_at, updated_at"
)
_ISSUER_VALUES = (
    "%s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, %s::jsonb, %s::jsonb, %s, %s, %s::jsonb, %s,"
    " %s, %s"
)
_METHOD_COLUMNS = (
    "id, issuer_id, type, provider, name, enabled, login, signup, settings, metadata,"
    " created_at, updated_at"
)


class IssuersView:
    name = "directory-issuers"
    event_types = (
        "issuer.created",
        "issuer.updated",
        "issuer.deleted",
        "issuer.auth-method.created",
        "issuer.auth-method.updated",
        "issuer.auth-method.deleted",
    )

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._insert = render(
            f"INSERT INTO {{schema}}.issuers_view ({_ISSUER_COLUMNS}) VALUES ({_ISSUER_VALUES})"
            " ON CONFLICT (id) DO NOTHING",
            schema=schema,
        )
        self._update = render(
            "UPDATE {schema}.issuers_view SET name = %s, description = %s, links = %s::jsonb,"
            " available_scopes = %s::jsonb, status = %s, status_at = %s, settings = %s::jsonb,"
            " tokens = %s::jsonb, access_mode = %s, branding_configured = %s,"
            " metadata = %s::jsonb, version = %s, updated_at = %s WHERE id = %s",
            schema=schema,
        )
        self._delete = render("DELETE FROM {schema}.issuers_view WHERE id = %s", schema=schema)
        self._delete_methods = render(
            "DELETE FROM {schema}.issuer_auth_methods_view WHERE issuer_id = %s", schema=schema
        )
        self._upsert_method = render(
            f"INSERT INTO {{schema}}.issuer_auth_methods_view ({_METHOD_COLUMNS}) VALUES (%s, %s,"
            " %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s) ON CONFLICT (id) DO UPDATE SET"
            " name = excluded.name, enabled = excluded.enabled, login = excluded.login,"
            " signup = excluded.signup, settings = excluded.settings,"
            " metadata = excluded.metadata, updated_at = excluded.updated_at",
            schema=schema,
        )
        self._delete_method = render(
            "DELETE FROM {schema}.issuer_auth_methods_view WHERE id = %s", schema=schema
        )
        self._reset = render(
            "TRUNCATE {schema}.issuers_view, {schema}.issuer_auth_methods_view", schema=schema
        )

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case IssuerCreated() as e:
                await conn.execute(self._insert, [
                    e.id, e.account_id, e.name, e.description, jsonb.dumps(e.links),
                    jsonb.dumps(e.available_scopes), e.status, None, jsonb.dumps(e.settings),
                    jsonb.dumps(e.tokens), _access_mode(e.settings), _branding(e.settings),
                    jsonb.dumps(e.metadata), stored.stream_version, e.created_at,
                    None])  # fmt: skip
            case IssuerUpdated() as e:
                await conn.execute(self._update, [
                    e.name, e.description, jsonb.dumps(e.links), jsonb.dumps(e.available_scopes),
                    e.status, e.status_at, jsonb.dumps(e.settings), jsonb.dumps(e.tokens),
                    _access_mode(e.settings), _branding(e.settings), jsonb.dumps(e.metadata),
                    stored.stream_version, e.updated_at, e.id])  # fmt: skip
            case IssuerDeleted() as e:
                await conn.execute(self._delete, [e.id])
                await conn.execute(self._delete_methods, [e.id])
            case AuthMethodCreated() as e:
                await self._method(conn, e, e.created_at, None)
            case AuthMethodUpdated() as e:
                await self._method(conn, e, 0, e.updated_at)
            case AuthMethodDeleted() as e:
                await conn.execute(self._delete_method, [e.id])

    async def _method(
        self,
        conn: psycopg.AsyncConnection[Any],
        e: AuthMethodCreated | AuthMethodUpdated,
        created_at: int,
        updated_at: int | None,
    ) -> None:
        await conn.execute(self._upsert_method, [
            e.id, e.issuer_id, e.method_type, e.provider, e.name, e.enabled, e.login, e.signup,
            jsonb.dumps(e.settings), jsonb.dumps(e.metadata), created_at, updated_at])  # fmt: skip

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)


def _access_mode(settings: dict[str, Any]) -> str | None:
    mode = settings.get("access", {}).get("mode")
    return mode if isinstance(mode, str) else None


def _branding(settings: dict[str, Any]) -> bool:
    return bool(settings.get("branding"))
