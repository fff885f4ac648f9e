"""Read-side SQL of the Events API (platform.md 8) over the audit log.

Visibility: a query sees only rows whose transaction id is below its snapshot's xmin (migration
0001). Every transaction below the xmin has finished, so a row that becomes visible later always
has a higher (tx_id, seq) than every row visible now: the visible log only ever grows at its end.
Hence a cursor over (tx_id, seq) never skips a row that commits late, and never repeats one, in
either direction: newest first (`desc`, the default) pages back through what was visible, and the
tailing order (`asc`) resumes after its last row and gets exactly what became visible since.

Each page is one index range scan from the cursor (migration 0003 indexes every filter, ending in
the commit order), so its cost does not grow with the log. Several event types are one branch
each (UNION ALL of per-type scans, each limited), merged and cut to the page. An `after`/`before`
window deep in the log would make that walk cross every row newer (or older) than the window, so
such a page takes the window by time instead (migration 0006) and sorts it into commit order
(`page` says when). The order, the cursor and the visibility rule are the same on both paths:
only the access path differs, never the rows."""

from __future__ import annotations

from typing import Any, LiteralString

import msgspec
import psycopg
from psycopg import sql

EQUALITY_FILTERS = ("issuer_id", "user_id", "client_id", "agent_id", "org_id")
GROUP_BY = ("type", "issuer_id", "client_id", "user_id", "agent_id")
COUNT_UNIQUE = ("user_id", "agent_id", "client_id")
INTERVAL_MS = {"hour": 3_600_000, "day": 86_400_000}
_VISIBLE: LiteralString = "a.tx_id < pg_snapshot_xmin(pg_current_snapshot())"
# The same, computed once per statement: a filter that is no index condition (the window path's
# scan) would otherwise take a snapshot per row.
_VISIBLE_ONCE: LiteralString = "a.tx_id < (SELECT pg_snapshot_xmin(pg_current_snapshot()))"
# The most rows outside an `after`/`before` window that a page walks across to reach it; past
# that, it takes the window by time (queries.events.page).
WALK_ROWS = 5_000
_ASC = sql.SQL("ASC")
_DESC = sql.SQL("DESC")


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
    account_id: str,
    filters: EventFilters,
    event_type: str | None,
    *,
    visible: LiteralString = _VISIBLE,
) -> tuple[list[sql.Composable], list[Any]]:
    where: list[sql.Composable] = [sql.SQL("a.account_id = %s"), sql.SQL(visible)]
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


def _walk(
    schema: str,
    account_id: str,
    filters: EventFilters,
    cursor: tuple[int, int] | None,
    limit: int,
    ascending: bool,
) -> tuple[sql.Composable, list[Any]]:
    """The commit-order walk: per event type, an index range scan from the cursor (migration
    0003) that stops after `limit` matches. Fast while the matches are dense near the cursor."""
    direction = _ASC if ascending else _DESC
    branches: list[sql.Composable] = []
    params: list[Any] = []
    for event_type in filters.event_types or (None,):
        where, values = _conditions(account_id, filters, event_type)
        if cursor is not None:
            where.append(_past(ascending))
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
    return sql.SQL(" UNION ALL ").join(branches), params


def _window(
    schema: str,
    account_id: str,
    filters: EventFilters,
    cursor: tuple[int, int] | None,
    limit: int,
    ascending: bool,
) -> tuple[sql.Composable, list[Any]]:
    """The time-window path: every row matching the filters, window included, taken by whatever
    index suits the predicate best (OFFSET 0 keeps the planner from walking the commit order,
    whose cost it cannot see), cut to the page by a top-N sort on (tx_id, seq); only the page's
    rows are then fetched whole. Same rows, same order as the walk."""
    where, values = _conditions(account_id, filters, None, visible=_VISIBLE_ONCE)
    if filters.event_types:
        where.append(sql.SQL("a.type = ANY(%s)"))
        values.append(list(filters.event_types))
    if cursor is not None:
        where.append(_past(ascending))
        values += [str(cursor[0]), cursor[1]]
    direction = _ASC if ascending else _DESC
    table = sql.Identifier(schema, "audit_events")
    query = sql.SQL(
        "(SELECT a.tx_id, a.seq, a.event FROM (SELECT k.tx_id, k.seq FROM"
        " (SELECT a.tx_id, a.seq FROM {table} AS a WHERE {where} OFFSET 0) AS k"
        " ORDER BY k.tx_id {dir}, k.seq {dir} LIMIT %s) AS k"
        " JOIN {table} AS a ON a.tx_id = k.tx_id AND a.seq = k.seq"
        " ORDER BY k.tx_id {dir}, k.seq {dir})"
    ).format(table=table, where=sql.SQL(" AND ").join(where), dir=direction)
    return query, [*values, limit]


def _gate(
    schema: str, account_id: str, filters: EventFilters, ascending: bool
) -> tuple[sql.Composable, list[Any]]:
    """`WITH gate (by_time)`: whether `page` takes the window path, i.e. whether the walk would
    cross more than WALK_ROWS rows outside the window before reaching it: the account's rows newer
    than the window (desc) or older (asc), counted on migration 0006's index alone, stopping at
    WALK_ROWS + 1."""
    if ascending:
        bounds = (-(2**63), -(2**63) if filters.after is None else filters.after)
    else:
        bounds = (2**63 - 1 if filters.before is None else filters.before, 2**63 - 1)
    gate = sql.SQL(
        "WITH gate AS MATERIALIZED (SELECT count(*) > %s AS by_time FROM (SELECT 1 FROM {table}"
        " AS a WHERE a.account_id = %s AND a.occurred_at >= %s AND a.occurred_at < %s LIMIT %s)"
        " AS n) "
    ).format(table=sql.Identifier(schema, "audit_events"))
    return gate, [WALK_ROWS, account_id, *bounds, WALK_ROWS + 1]


def _past(ascending: bool) -> sql.Composable:
    return sql.SQL("(a.tx_id, a.seq) > (%s::text::xid8, %s)" if ascending
                   else "(a.tx_id, a.seq) < (%s::text::xid8, %s)")  # fmt: skip


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
    """Up to `limit` visible rows past `cursor` (tx_id, seq), newest first or in commit order.

    Without `after`/`before`, the walk. With them, one statement holds both paths and runs one
    (`_gate`): the walk when it reaches the window within WALK_ROWS rows of the log's end (or,
    ascending, its start), where the window's rows are then dense; else the window path, whose
    cost is the window's size instead of its depth. Both give the same rows in the same order
    from the same cursor: the choice changes only the cost."""
    direction = _ASC if ascending else _DESC
    walk, walk_params = _walk(schema, account_id, filters, cursor, limit, ascending)
    if filters.after is None and filters.before is None:
        gate, body, params = sql.SQL(""), walk, walk_params
    else:
        window, window_params = _window(schema, account_id, filters, cursor, limit, ascending)
        gate, gate_params = _gate(schema, account_id, filters, ascending)
        body = sql.SQL(
            "SELECT * FROM ({window}) AS w WHERE (SELECT by_time FROM gate)"
            " UNION ALL SELECT * FROM ({walk}) AS w WHERE NOT (SELECT by_time FROM gate)"
        ).format(window=window, walk=walk)
        params = [*gate_params, *window_params, *walk_params]
    query = sql.SQL(
        "{gate}SELECT u.tx_id::text::bigint, u.seq, u.event::text FROM ({body}) AS u"
        " ORDER BY u.tx_id {dir}, u.seq {dir} LIMIT %s"
    ).format(gate=gate, body=body, dir=direction)
    # Never a prepared statement's generic plan for a window: without the values, the planner
    # cannot cost the gate's two branches and may pick a plan that scans the account's log.
    windowed = filters.after is not None or filters.before is not None
    cur = await conn.execute(query, [*params, limit], prepare=False if windowed else None)
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
