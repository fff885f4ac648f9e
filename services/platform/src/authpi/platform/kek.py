"""KEK rotation: re-wrap every stored data key under the newest key-encryption key, so that
the older ones can leave the configuration (`authpi kek rotate`). The wrapped keys are the
per-user PII keys (the region's PII key store, `authpi.crypto.pii`), the signing keys' data keys
(token) and the per-user replay keys (gateway); each is wrapped with a context string that its
owner also uses to unwrap it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from authpi.crypto.envelope import Kek
from authpi.crypto.pii import DEFAULT_REGION, region_store

# Not a service: the region's PII key store, present whatever services a process runs.
REGION_STORE = "pii"
# The services that reach the region store (crypto/pii.py: the directory writes and shreds keys,
# the token service reads them); no other service's role is granted it (platform/database.py).
PII_READERS = ("directory", "token")


class Wrapped(msgspec.Struct, frozen=True):
    service: str  # the owning service's schema, or REGION_STORE
    table: str
    key_column: str
    value_column: str
    context: str  # `{}` is the row's key (crypto/pii.py key_context, token signing/keys.py)


WRAPPED = [
    Wrapped(REGION_STORE, "pii_keys", "subject_id", "wrapped_key", "pii:{}"),
    Wrapped("token", "signing_key_secrets", "kid", "wrapped_dek", "authpi.token.signing-key:{}"),
    Wrapped("gateway", "replay_keys", "resource_id", "wrapped_key", "replay:{}"),
]


class Rewrapped(msgspec.Struct, frozen=True):
    table: str
    rewrapped: int
    current: int


def _schema(w: Wrapped, namespace: str, region: str) -> str:
    if w.service == REGION_STORE:
        return region_store(namespace, region)
    return f"{namespace}_{w.service}"


def _present(w: Wrapped, services: list[str]) -> bool:
    return w.service == REGION_STORE or w.service in services


async def rewrap_all(
    pool: AsyncConnectionPool,
    kek: Kek,
    namespace: str,
    services: list[str],
    region: str = DEFAULT_REGION,
) -> list[Rewrapped]:
    """One transaction per table; a key that no configured KEK opens aborts its table
    (WrongKek) and changes nothing there."""
    return [
        await _rewrap(pool, kek, _schema(w, namespace, region), w)
        for w in WRAPPED
        if _present(w, services)
    ]


async def _rewrap(pool: AsyncConnectionPool, kek: Kek, schema: str, w: Wrapped) -> Rewrapped:
    table = sql.Identifier(schema, w.table)
    key_col, value_col = sql.Identifier(w.key_column), sql.Identifier(w.value_column)
    select = sql.SQL("SELECT {}, {} FROM {} FOR UPDATE").format(key_col, value_col, table)
    update = sql.SQL("UPDATE {} SET {} = %s WHERE {} = %s").format(table, value_col, key_col)
    done = current = 0
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(select)
        rows: list[tuple[Any, ...]] = await cur.fetchall()
        for key, wrapped in rows:
            if kek.is_current(wrapped):
                current += 1
                continue
            context = w.context.format(key)
            await conn.execute(update, [kek.wrap(kek.unwrap(wrapped, context), context), key])
            done += 1
    return Rewrapped(table=f"{schema}.{w.table}", rewrapped=done, current=current)


async def check_kek(
    pools: Mapping[str, AsyncConnectionPool],
    kek: Kek,
    namespace: str,
    region: str = DEFAULT_REGION,
) -> None:
    """At start: one stored key of each kind must open, or the process refuses to start
    (WrongKek) instead of failing later, request by request, with a misconfigured KEK. `pools`:
    the pool of each service the process runs (each may connect as the service's own role);
    the region store is read through a service that reads it (PII_READERS)."""
    for w in WRAPPED:
        owner = w.service
        if owner == REGION_STORE:
            owner = next((s for s in PII_READERS if s in pools), "")
        if owner not in pools:
            continue
        table = sql.Identifier(_schema(w, namespace, region), w.table)
        query = sql.SQL("SELECT {}, {} FROM {} LIMIT 1").format(
            sql.Identifier(w.key_column), sql.Identifier(w.value_column), table
        )
        async with pools[owner].connection() as conn:
            row = await (await conn.execute(query)).fetchone()
        if row is not None:
            kek.unwrap(row[1], w.context.format(row[0]))
