"""token-issuers: the token service learns issuers from the directory's issuer.* events into its
own issuers_view (it never reads the directory's tables), and keeps each issuer's signing keys in
step in the same transaction: keys for a new issuer, retirement when it is deleted."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.contracts.base import Meta
from authpi.contracts.directory import IssuerCreated, IssuerDeleted, IssuerUpdated
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent
from authpi.token.handlers.signing_keys import KeyRing

_COLUMNS = (
    "id, account_id, status, available_scopes, access_token_ttl, refresh_token_ttl,"
    " id_token_ttl, session_max_age, session_idle_timeout, signing_algs, default_alg, updated_at,"
    " name, settings"
)


class IssuersReaction:
    name = "token-issuers"
    event_types = ("issuer.created", "issuer.updated", "issuer.deleted")

    def __init__(self, schema: str, keys: KeyRing) -> None:
        self.schema = schema
        self.keys = keys
        self._upsert = render(
            f"INSERT INTO {{schema}}.issuers_view ({_COLUMNS}) VALUES (%s, %s, %s, %s::jsonb, %s,"
            " %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s::jsonb) ON CONFLICT (id) DO UPDATE SET"
            " status = excluded.status, available_scopes = excluded.available_scopes,"
            " access_token_ttl = excluded.access_token_ttl,"
            " refresh_token_ttl = excluded.refresh_token_ttl,"
            " id_token_ttl = excluded.id_token_ttl, session_max_age = excluded.session_max_age,"
            " session_idle_timeout = excluded.session_idle_timeout,"
            " signing_algs = excluded.signing_algs, default_alg = excluded.default_alg,"
            " updated_at = excluded.updated_at, name = excluded.name,"
            " settings = excluded.settings",
            schema=schema,
        )
        self._delete = render("DELETE FROM {schema}.issuers_view WHERE id = %s", schema=schema)
        self._reset = render("TRUNCATE {schema}.issuers_view", schema=schema)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case IssuerCreated() | IssuerUpdated() as e:
                await conn.execute(self._upsert, _row(e, stored.recorded_at))
                plan = await self.keys.ensure(conn, e.id, e.account_id, _caused_by(stored, e.id))
            case IssuerDeleted() as e:
                await conn.execute(self._delete, [e.id])
                plan = await self.keys.retire_all(conn, e.id, _caused_by(stored, e.id))
            case _:
                return
        if plan.empty:
            # No key changed (so KeyRing sent no notice), but the issuer did (status, scopes,
            # lifetimes, or its deletion): every key cache reloads it.
            await conn.execute(self.keys.sql.notify, [self.keys.sql.channel, e.id])

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)


def _row(e: IssuerCreated | IssuerUpdated, recorded_at: int) -> list[Any]:
    t = e.tokens
    return [
        e.id,
        e.account_id,
        e.status,
        jsonb.dumps(e.available_scopes),
        t.access_token_ttl,
        t.refresh_token_ttl,
        t.id_token_ttl,
        t.session_max_age,
        t.session_idle_timeout,
        jsonb.dumps(t.signing_algs),
        t.default_signature_alg,
        recorded_at,
        e.name,
        jsonb.dumps(e.settings),
    ]


def _caused_by(stored: StoredEvent, issuer_id: str) -> Meta:
    return Meta(
        account_id=stored.meta.account_id,
        issuer_id=issuer_id,
        trigger="system",
        correlation_id=stored.meta.correlation_id or stored.event_id,
        causation_id=stored.event_id,
        region=stored.meta.region,
    )
