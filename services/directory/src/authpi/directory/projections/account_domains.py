"""account_domains_view: inline projection of an account's domains (core-api.md 3.3), one row
per host. `account.updated` carries a `domains` snapshot when it changed them (verification, the
primary flag); the other domain events change one row each."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.contracts.directory import (
    AccountDomainAdded,
    AccountDomainAssigned,
    AccountDomainRemoved,
    AccountDomainUnassigned,
    AccountUpdated,
)
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent


class AccountDomainsView:
    name = "directory-account-domains"
    event_types = (
        "account.updated",
        "account.domain.added",
        "account.domain.removed",
        "account.domain.assigned",
        "account.domain.unassigned",
    )

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._insert = render(
            "INSERT INTO {schema}.account_domains_view (host, account_id, verified, added_at)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (host) DO NOTHING",
            schema=schema,
        )
        self._delete = render(
            "DELETE FROM {schema}.account_domains_view WHERE host = %s AND account_id = %s",
            schema=schema,
        )
        self._assign = render(
            "UPDATE {schema}.account_domains_view SET assigned_issuer_id = %s, assigned_at = %s"
            " WHERE host = %s AND account_id = %s",
            schema=schema,
        )
        self._flags = render(
            "UPDATE {schema}.account_domains_view SET verified = %s, is_primary = %s,"
            " assigned_issuer_id = %s, assigned_at = %s WHERE host = %s AND account_id = %s",
            schema=schema,
        )
        self._reset = render("TRUNCATE {schema}.account_domains_view", schema=schema)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case AccountDomainAdded() as e:
                await conn.execute(self._insert, [e.host, e.account_id, e.verified, e.added_at])
            case AccountDomainRemoved() as e:
                await conn.execute(self._delete, [e.host, e.account_id])
            case AccountDomainAssigned() as e:
                await conn.execute(self._assign, [e.issuer_id, e.assigned_at, e.host, e.account_id])
            case AccountDomainUnassigned() as e:
                await conn.execute(self._assign, [None, None, e.host, e.account_id])
            case AccountUpdated(domains=list() as domains) as e:
                for d in domains:
                    await conn.execute(
                        self._flags,
                        [d.verified, d.primary, d.assigned_issuer_id, d.assigned_at, d.host, e.id],
                    )

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)
