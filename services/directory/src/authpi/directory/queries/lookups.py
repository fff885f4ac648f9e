"""Small lookups the write path makes before a command: a reservation's owner, an account's
backing organization, the number of accounts."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.eventstore.sqltext import render


class Queries:
    def __init__(self, schema: str) -> None:
        self._reservation = render(
            "SELECT owner FROM {schema}.reservations WHERE scope = %s AND key = %s", schema=schema
        )
        self._account = render(
            "SELECT id, org_id FROM {schema}.accounts_view WHERE id = %s", schema=schema
        )
        self._count_accounts = render("SELECT count(*) FROM {schema}.accounts_view", schema=schema)

    async def reservation(
        self, conn: psycopg.AsyncConnection[Any], scope: str, key: str
    ) -> str | None:
        cur = await conn.execute(self._reservation, [scope, key])
        row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def account_org(self, conn: psycopg.AsyncConnection[Any], account_id: str) -> str | None:
        cur = await conn.execute(self._account, [account_id])
        row = await cur.fetchone()
        return None if row is None else str(row[1])

    async def count_accounts(self, conn: psycopg.AsyncConnection[Any]) -> int:
        cur = await conn.execute(self._count_accounts)
        row = await cur.fetchone()
        return int(row[0]) if row else 0
