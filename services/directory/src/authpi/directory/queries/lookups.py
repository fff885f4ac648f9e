"""Small lookups the write path makes before a command: a reservation's owner, an account's
backing organization, the number of accounts."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql


class Queries:
    def __init__(self, schema: str) -> None:
        q = sql.Identifier(schema)
        self._reservation = (
            sql.SQL("SELECT owner FROM {}.reservations WHERE scope = %s AND key = %s")
            .format(q)
            .as_string()
        )
        self._account = (
            sql.SQL("SELECT id, org_id FROM {}.accounts_view WHERE id = %s").format(q).as_string()
        )
        self._count_accounts = (
            sql.SQL("SELECT count(*) FROM {}.accounts_view").format(q).as_string()
        )

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
