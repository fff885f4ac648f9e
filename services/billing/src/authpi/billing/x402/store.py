"""SQL over `x402_payments`, the local replay store and settlement record (migration 0010)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import psycopg
from psycopg.rows import class_row

from authpi.eventstore.sqltext import render

Key = tuple[str, str, str, str]  # network, asset, payer, nonce (lowercase addresses)


class PaymentRow(msgspec.Struct, kw_only=True):
    network: str
    asset: str
    payer: str
    nonce: str
    account_id: str
    method_id: str | None
    pay_to: str
    value: int
    version: int
    authorization: dict[str, Any]
    signature: str
    status: str
    tx_hash: str | None
    entry_id: str | None
    created_at: int


_WHERE = " WHERE network = %s AND asset = %s AND payer = %s AND nonce = %s"
_COLUMNS = (
    "network, asset, payer, nonce, account_id, method_id, pay_to, value::bigint AS value, version,"
    " auth AS authorization, signature, status, tx_hash, entry_id, created_at"
)


def lock_key(key: Key) -> str:
    return "authpi.x402:" + ":".join(key)


async def claim(
    conn: psycopg.AsyncConnection[Any], schema: str, key: Key, *, account_id: str,
    method_id: str | None, pay_to: str, value: int, version: int, authorization: dict[str, str],
    signature: str, now: int,
) -> bool:  # fmt: skip
    cur = await conn.execute(
        render(
            "INSERT INTO {schema}.x402_payments (network, asset, payer, nonce, account_id,"
            ' method_id, pay_to, value, version, auth, signature, status, created_at,'
            " updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'claimed', %s, %s)"
            " ON CONFLICT DO NOTHING",
            schema=schema,
        ),
        [*key, account_id, method_id, pay_to.lower(), value, version, json.dumps(authorization),
         signature, now, now],
    )  # fmt: skip
    return cur.rowcount == 1


async def release(conn: psycopg.AsyncConnection[Any], schema: str, key: Key) -> None:
    """Forget a claim that never reached the chain (the payment was refused before sending)."""
    await conn.execute(
        render("DELETE FROM {schema}.x402_payments" + _WHERE + " AND status = 'claimed'",
               schema=schema),
        list(key),
    )  # fmt: skip


async def mark(
    conn: psycopg.AsyncConnection[Any], schema: str, key: Key, status: str, now: int, *,
    tx_hash: str | None = None, entry_id: str | None = None, reason: str | None = None,
) -> None:  # fmt: skip
    await conn.execute(
        render(
            "UPDATE {schema}.x402_payments SET status = %s, updated_at = %s,"
            " tx_hash = COALESCE(%s, tx_hash), entry_id = COALESCE(%s, entry_id),"
            " reason = COALESCE(%s, reason)" + _WHERE,
            schema=schema,
        ),
        [status, now, tx_hash, entry_id, reason, *key],
    )


async def get(conn: psycopg.AsyncConnection[Any], schema: str, key: Key) -> PaymentRow | None:
    cur = conn.cursor(row_factory=class_row(PaymentRow))
    await cur.execute(
        render("SELECT " + _COLUMNS + " FROM {schema}.x402_payments" + _WHERE, schema=schema),
        list(key),
    )
    return await cur.fetchone()


async def open_payments(
    conn: psycopg.AsyncConnection[Any], schema: str, limit: int = 100
) -> list[PaymentRow]:
    cur = conn.cursor(row_factory=class_row(PaymentRow))
    await cur.execute(
        render(
            "SELECT " + _COLUMNS + " FROM {schema}.x402_payments"
            " WHERE status IN ('claimed', 'sent', 'settled') ORDER BY created_at LIMIT %s",
            schema=schema,
        ),
        [limit],
    )
    return await cur.fetchall()


async def try_lock(conn: psycopg.AsyncConnection[Any], key: Key) -> bool:
    cur = await conn.execute(
        "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [lock_key(key)]
    )
    row = await cur.fetchone()
    return bool(row and row[0])


async def lock(conn: psycopg.AsyncConnection[Any], key: Key) -> None:
    await conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [lock_key(key)])


async def unlock(conn: psycopg.AsyncConnection[Any], key: Key) -> None:
    await conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [lock_key(key)])
