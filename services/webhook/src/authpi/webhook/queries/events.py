"""Read-side SQL of the Events API (platform.md 8) over the audit log.

Visibility: a query sees only rows whose transaction id is below its snapshot's xmin (migration
0001). Every transaction below the xmin has finished, so a row that becomes visible later always
has a higher (tx_id, seq) than every row visible now: the visible log only ever grows at its end.
Hence a cursor over (tx_id, seq) never skips a row that commits late, and never repeats one, in
either direction: newest first (`desc`, the default) pages back through what was visible, and the
tailing order (`asc`) resumes after its last row and gets exactly what became visible since.

Each page is one index range scan from the cursor (migration 0003 indexes every filter, ending in
the commit order), so its cost does not grow with the log. Several event types are one branch
each (UNION ALL of per-type scans, each limited), merged and cut to the page."""

from __future__ import annotations

from typing import Any, LiteralString

import msgspec
import psycopg
from psycopg import sql

EQUALITY_FILTERS = ("issuer_id", "user_id", "client_id", "agent_id", "org_id")
GROUP_BY = ("type", "issuer_id", "client_id", "user_id", "agent_id")
COUNT_UNIQUE = ("user_id", "agent_id", "client_id")
INTERVAL_MS = {"hour": 3_600_000, "day": 86_400_000}
_VISIBLE = "a.tx_id < pg_snapshot_xmin(pg_current_snapshot())"


class EventFilters(msgspec.Struct, frozen=True, kw_only=True):
    issuer_id: str | None = None
    user_id: str | None = None
    client_id: str | None = None
    agent_id: str | None = None
    org_id: str | None = None
    event_types: tuple[str, ...] = ()
    after: int | None = None  # occurred_at >= after (Unix ms)
    before: int | None = None  # occurred_at < before (Unix ms)


class EventRow(msgspec.Struct, frozen=True):
    tx_id: int
    seq: int
    event: str  # the public event's JSON


class Bucket(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    start: int | None = None
    key: str | None = None
    count: int
    unique: int | None = None


def _conditions(
    account_id: str, filters: EventFilters, event_type: str | None
) -> tuple[list[sql.Composable], list[Any]]:
    where: list[sql.Composable] = [sql.SQL("a.account_id = %s"), sql.SQL(_VISIBLE)]
    params: list[Any] = [account_id]
    for name in EQUALITY_FILTERS:
        value = getattr(filters, name)
        if value is not None:
            where.append(sql.SQL("a.{} = %s").format(sql.Identifier(name)))
            params.append(value)
    if event_type is not None:
        where.append(sql.SQL("a.type = %s"))
        params.append(event_type)
    if filters.after is not None:
        where.append(sql.SQL("a.occurred_at >= %s"))
        params.append(filters.after)
    if filters.before is not None:
        where.append(sql.SQL("a.occurred_at < %s"))
        params.append(filters.before)
    return where, params


async def page(
    conn: psycopg.AsyncConnection[Any],
    schema: str,
    account_id: str,
    filters: EventFilters,
    cursor: tuple[int, int] | None,
    limit: int,
    *,
    ascending: bool = False,
) -> list[EventRow]:
    """Up to `limit` visible rows past `cursor` (tx_id, seq), newest first or in commit order."""
    direction = sql.SQL("ASC" if ascending else "DESC")
    past = sql.SQL("(a.tx_id, a.seq) > (%s::text::xid8, %s)" if ascending
                   else "(a.tx_id, a.seq) < (%s::text::xid8, %s)")  # fmt: skip
    branches: list[sql.Composable] = []
    params: list[Any] = []
    for event_type in filters.event_types or (None,):
        where, values = _conditions(account_id, filters, event_type)
        if cursor is not None:
            where.append(past)
            values += [str(cursor[0]), cursor[1]]
        branches.append(
            sql.SQL(
                "(SELECT a.tx_id, a.seq, a.event FROM {table} AS a WHERE {where}"
                " ORDER BY a.tx_id {dir}, a.seq {dir} LIMIT %s)"
            ).format(
                table=sql.Identifier(schema, "audit_events"),
                where=sql.SQL(" AND ").join(where),
                dir=direction,
            )
        )
        params += [*values, limit]
    query = sql.SQL(
        "SELECT u.tx_id::text::bigint, u.seq, u.event::text FROM ({branches}) AS u"
        " ORDER BY u.tx_id {dir}, u.seq {dir} LIMIT %s"
    ).format(branches=sql.SQL(" UNION ALL ").join(branches), dir=direction)
    cur = await conn.execute(query, [*params, limit])
    return [EventRow(int(r[0]), int(r[1]), str(r[2])) for r in await cur.fetchall()]


async def one(
    conn: psycopg.AsyncConnection[Any], schema: str, account_id: str, event_id: str
) -> str | None:
    query = sql.SQL(
        "SELECT a.event::text FROM {table} AS a WHERE a.id = %s AND a.account_id = %s AND "
        + _VISIBLE
    ).format(table=sql.Identifier(schema, "audit_events"))
    cur = await conn.execute(query, [event_id, account_id])
    row = await cur.fetchone()
    return None if row is None else str(row[0])


async def aggregate(
    conn: psycopg.AsyncConnection[Any],
    schema: str,
    account_id: str,
    filters: EventFilters,
    *,
    group_by: str | None,
    interval: str | None,
    count_unique: str | None,
    max_buckets: int = 10_000,
) -> list[Bucket]:
    """Counts of the visible rows matching `filters`: one bucket per (interval start, group key),
    both optional. `group_by` and `count_unique` are names from GROUP_BY / COUNT_UNIQUE."""
    where, params = _conditions(account_id, filters, None)
    if filters.event_types:
        where.append(sql.SQL("a.type = ANY(%s)"))
        params.append(list(filters.event_types))
    start: sql.Composable = sql.SQL("NULL::bigint")
    if interval is not None:
        width = INTERVAL_MS[interval]
        start = sql.SQL("(a.occurred_at / {w}) * {w}").format(w=sql.Literal(width))
    key: sql.Composable = sql.SQL("NULL::text")
    if group_by is not None:
        assert group_by in GROUP_BY
        key = sql.SQL("a.{}").format(sql.Identifier(group_by))
    unique: sql.Composable = sql.SQL("NULL::bigint")
    if count_unique is not None:
        assert count_unique in COUNT_UNIQUE
        unique = sql.SQL("count(DISTINCT a.{})").format(sql.Identifier(count_unique))
    query = sql.SQL(
        "SELECT {start} AS start, {key} AS key, count(*) AS n, {unique} AS u"
        " FROM {table} AS a WHERE {where} GROUP BY 1, 2 ORDER BY 1 NULLS FIRST, 3 DESC, 2"
        " LIMIT %s"
    ).format(
        start=start, key=key, unique=unique, table=sql.Identifier(schema, "audit_events"),
        where=sql.SQL(" AND ").join(where),
    )  # fmt: skip
    cur = await conn.execute(query, [*params, max_buckets])
    rows = await cur.fetchall()
    buckets = [
        Bucket(start=r[0], key=r[1], count=int(r[2]), unique=None if r[3] is None else int(r[3]))
        for r in rows
    ]
    if not buckets and interval is None:
        buckets = [Bucket(count=0, unique=0 if count_unique else None)]
    return buckets


_SWEEP: LiteralString = (
    "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE occurred_at < %s LIMIT %s)"
)


async def sweep(
    conn: psycopg.AsyncConnection[Any], schema: str, cutoff_ms: int, batch: int = 5_000
) -> int:
    """Delete one batch of rows older than `cutoff_ms` (retention); returns how many."""
    query = sql.SQL(_SWEEP).format(table=sql.Identifier(schema, "audit_events"))
    cur = await conn.execute(query, [cutoff_ms, batch])
    return cur.rowcount
