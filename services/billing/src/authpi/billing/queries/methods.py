"""Read-side SQL over payment methods (platform.md 5.3): the account's methods, removed ones
included (they keep their record), and the enabled x402 method a 402 challenge is built from."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
from psycopg.rows import class_row

from authpi.eventstore.sqltext import render


class MethodRow(msgspec.Struct, kw_only=True):
    id: str
    account_id: str
    type: str
    enabled: bool
    network: str
    asset: str
    payer: str | None
    topup_amount: int
    created_at: int
    disabled_at: int | None
    removed_at: int | None
    updated_at: int | None


_COLUMNS = (
    "id, account_id, type, enabled, network, asset, payer, topup_amount, created_at,"
    " disabled_at, removed_at, updated_at"
)


async def methods(
    conn: psycopg.AsyncConnection[Any], schema: str, account_id: str
) -> list[MethodRow]:
    cur = conn.cursor(row_factory=class_row(MethodRow))
    await cur.execute(
        render(
            "SELECT " + _COLUMNS + " FROM {schema}.payment_methods_view WHERE account_id = %s"
            " ORDER BY created_at, id",
            schema=schema,
        ),
        [account_id],
    )
    return await cur.fetchall()


async def method(
    conn: psycopg.AsyncConnection[Any], schema: str, account_id: str, method_id: str
) -> MethodRow | None:
    cur = conn.cursor(row_factory=class_row(MethodRow))
    await cur.execute(
        render(
            "SELECT " + _COLUMNS + " FROM {schema}.payment_methods_view"
            " WHERE account_id = %s AND id = %s",
            schema=schema,
        ),
        [account_id, method_id],
    )
    return await cur.fetchone()


async def x402_method(
    conn: psycopg.AsyncConnection[Any], schema: str, account_id: str
) -> MethodRow | None:
    """The enabled x402 method, if any (the newest when several are enabled)."""
    cur = conn.cursor(row_factory=class_row(MethodRow))
    await cur.execute(
        render(
            "SELECT " + _COLUMNS + " FROM {schema}.payment_methods_view"
            " WHERE account_id = %s AND type = 'x402' AND enabled AND removed_at IS NULL"
            " ORDER BY created_at DESC, id DESC LIMIT 1",
            schema=schema,
        ),
        [account_id],
    )
    return await cur.fetchone()
