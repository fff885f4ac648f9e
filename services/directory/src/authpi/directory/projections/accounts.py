"""accounts_view: inline projection of Account events. A domain event changes the account (its
`domains`), so it moves `updated_at` and the version here; the domains themselves are in
account_domains_view (projections/account_domains.py)."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.contracts.directory import AccountCreated, AccountUpdated
from authpi.directory.domain.account_domains import at_of
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent


class AccountsView:
    name = "directory-accounts"
    event_types = (
        "account.created",
        "account.updated",
        "account.domain.added",
        "account.domain.removed",
        "account.domain.assigned",
        "account.domain.unassigned",
    )

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._insert = render(
            "INSERT INTO {schema}.accounts_view (id, org_id, name, owner_user_id, metadata,"
            " version, created_at) VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s)"
            " ON CONFLICT (id) DO NOTHING",
            schema=schema,
        )
        self._update = render(
            "UPDATE {schema}.accounts_view SET name = coalesce(%s, name), description = %s,"
            " logo_url = %s, owner_user_id = coalesce(%s, owner_user_id),"
            " metadata = %s::jsonb, version = %s, updated_at = %s WHERE id = %s",
            schema=schema,
        )
        self._touch = render(
            "UPDATE {schema}.accounts_view SET version = %s, updated_at = %s WHERE id = %s",
            schema=schema,
        )
        self._reset = render("TRUNCATE {schema}.accounts_view", schema=schema)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case AccountCreated() as e:
                await conn.execute(
                    self._insert,
                    [e.id, e.org_id, e.name, e.owner_user_id,
                     jsonb.dumps(e.metadata), stored.stream_version, e.created_at],
                )  # fmt: skip
            case AccountUpdated() as e:
                await conn.execute(
                    self._update,
                    [e.name, e.description, e.logo_url, e.owner_user_id,
                     jsonb.dumps(e.metadata), stored.stream_version, e.updated_at,
                     e.id],
                )  # fmt: skip
            case event if (at := at_of(event)) is not None:
                await conn.execute(self._touch, [stored.stream_version, at, stored.stream_id])

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)
