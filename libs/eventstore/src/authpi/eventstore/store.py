"""Load and append with expected version, fold with a decider, and `execute` a command in one
transaction (load, decide, append, inline projections). The events table is the outbox."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Generator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, LiteralString, Protocol, TypeVar

import msgspec
import psycopg
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

from authpi.contracts.base import Event, Meta
from authpi.contracts.catalogue import decode_event
from authpi.crypto.ids import Ids, RandomIds
from authpi.errors import Conflict, VersionConflict
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render

S = TypeVar("S")
C = TypeVar("C")
C_contra = TypeVar("C_contra", contravariant=True)


class Decider(Protocol[C_contra, S]):
    INITIAL: S

    def decide(self, cmd: C_contra, state: S) -> list[Event]: ...

    def evolve(self, state: S, event: Event) -> S: ...


class StoredEvent(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    tx_id: int
    event_id: str
    stream_id: str
    stream_version: int
    type: str
    schema_version: int
    event: Event
    meta: Meta
    recorded_at: int


@dataclass
class Tx:
    """One write transaction: what inline projections and reservations get."""

    conn: psycopg.AsyncConnection[Any]
    store: EventStore
    events: list[StoredEvent] = field(default_factory=list[StoredEvent])

    async def reserve(self, scope: str, key: str, owner: str) -> None:
        """Claim a unique fact; a taken key owned by someone else is a Conflict."""
        cur = await self.conn.execute(self.store.sql_reserve, [scope, key, owner])
        row = await cur.fetchone()
        if row is None or row[0] != owner:
            raise Conflict(f"{scope} is already taken", reason=f"reservation.{scope}")

    async def release(self, scope: str, key: str, owner: str) -> None:
        await self.conn.execute(self.store.sql_release, [scope, key, owner])


Reaction = Callable[[Tx], Awaitable[None]]


@dataclass(frozen=True)
class Step(Generic[C, S]):
    """One command on one stream. `fresh`: the stream is known to be empty unless another
    writer has just taken it (its id was just made from random ids, a new session or token; or
    a view read in the transaction says nothing was written to it yet): it is not loaded, and
    its events go at version 1, where the unique (stream, version) key refuses a second writer
    as a VersionConflict (the caller plans again, from what that writer left)."""

    stream_id: str
    decider: Decider[C, S]
    command: C
    fresh: bool = False


# One command of a group commit (execute_each): its step and meta, or what refused it.
Planned = tuple[Step[Any, Any], Meta] | BaseException

# The steps of one transaction, or a function that works them out inside it (execute_all).
Steps = Sequence[Step[Any, Any]] | Callable[[Tx], Awaitable[Sequence[Step[Any, Any]]]]


@dataclass(frozen=True)
class Outcome(Generic[S]):
    state: S
    version: int
    events: list[StoredEvent]


class _Record(msgspec.Struct, frozen=True):
    """One row of a many-row append, as jsonb_to_recordset reads it."""

    e: str
    s: str
    v: int
    t: str
    d: Any  # the event
    m: Meta


_meta_decoder = msgspec.json.Decoder(Meta)
# The events a request committed, for its read-your-writes wait (messaging.sync).
_written: ContextVar[list[StoredEvent] | None] = ContextVar("authpi_written", default=None)


@contextlib.contextmanager
def recording_writes() -> Generator[list[StoredEvent]]:
    """Collect every event committed by `execute`/`execute_all` inside the block (one request)."""
    written: list[StoredEvent] = []
    token = _written.set(written)
    try:
        yield written
    finally:
        _written.reset(token)


def record_written(events: Sequence[StoredEvent]) -> None:
    """Report committed events to the current request's recording, if any."""
    written = _written.get()
    if written is not None:
        written.extend(events)


class InlineProjection(Protocol):
    """A view the owning service keeps in the write transaction (read-your-writes). It declares
    the event types it applies; the store routes each committed event to the views that name its
    type, so a handler cannot forget one."""

    @property
    def event_types(self) -> Sequence[str]: ...

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None: ...


# A projection may also have `apply_many(conn, events) -> events it left to apply()`: many
# events of one type in one statement (a group commit's). It is optional, so looked up by name.
ApplyMany = Callable[
    [psycopg.AsyncConnection[Any], Sequence[StoredEvent]], Awaitable[Sequence[StoredEvent]]
]


class EventStore:
    """The event store of one service schema, with that service's inline projections."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        schema: str,
        service: str,
        ids: Ids | None = None,
        projections: Sequence[InlineProjection] = (),
    ) -> None:
        self.pool = pool
        self.schema = schema
        self.service = service
        self.ids = ids or RandomIds()
        self.projections = tuple(projections)
        # event type -> the projections that apply it, in registration order
        self._routes: dict[str, list[InlineProjection]] = {}
        for projection in self.projections:
            for event_type in projection.event_types:
                self._routes.setdefault(event_type, []).append(projection)
        self.sql_load: LiteralString = render(
            "SELECT position, tx_id::text, event_id::text, stream_id, stream_version, type,"
            " schema_version, data::text, meta::text,"
            " (extract(epoch from recorded_at) * 1000)::bigint"
            " FROM {schema}.events WHERE stream_id = %s AND stream_version > %s"
            " ORDER BY stream_version",
            schema=schema,
        )
        # One statement for the whole batch: every event of a command in one round trip.
        self.sql_append: LiteralString = render(
            "INSERT INTO {schema}.events (event_id, stream_id, stream_version, type,"
            " schema_version, data, meta) SELECT e, %s, v, t, 1, d, %s::jsonb FROM unnest("
            "%s::uuid[], %s::int[], %s::text[], %s::jsonb[]) AS u(e, v, t, d)"
            " RETURNING position, tx_id::text, (extract(epoch from recorded_at) * 1000)::bigint",
            schema=schema,
        )
        # The common case, one event: plain parameters (dumping four arrays costs more in
        # psycopg than the rest of the statement).
        self.sql_append_one: LiteralString = render(
            "INSERT INTO {schema}.events (event_id, stream_id, stream_version, type,"
            " schema_version, data, meta) VALUES (%s::uuid, %s, %s, %s, 1, %s::jsonb, %s::jsonb)"
            " RETURNING position, tx_id::text, (extract(epoch from recorded_at) * 1000)::bigint",
            schema=schema,
        )
        # Many one-event commands in one statement, each on its own stream with its own expected
        # version: a (stream, version) another writer took is skipped, not fatal, so one
        # command's conflict leaves the others of the statement in place (execute_each).
        self.sql_append_each: LiteralString = render(
            "INSERT INTO {schema}.events (event_id, stream_id, stream_version, type,"
            " schema_version, data, meta) SELECT e, s, v, t, 1, d, m FROM"
            " jsonb_to_recordset(%s::jsonb) AS u(e uuid, s text, v int, t text, d jsonb, m jsonb)"
            " ON CONFLICT (stream_id, stream_version) DO NOTHING"
            " RETURNING event_id::text, position, tx_id::text,"
            " (extract(epoch from recorded_at) * 1000)::bigint",
            schema=schema,
        )
        # Several streams' events of one command (execute_all) in one statement; any taken
        # version fails the statement (VersionConflict), as `sql_append` does.
        self.sql_append_streams: LiteralString = render(
            "INSERT INTO {schema}.events (event_id, stream_id, stream_version, type,"
            " schema_version, data, meta) SELECT e, s, v, t, 1, d, m FROM"
            " jsonb_to_recordset(%s::jsonb) AS u(e uuid, s text, v int, t text, d jsonb, m jsonb)"
            " RETURNING event_id::text, position, tx_id::text,"
            " (extract(epoch from recorded_at) * 1000)::bigint",
            schema=schema,
        )
        self.sql_load_many: LiteralString = render(
            "SELECT position, tx_id::text, event_id::text, stream_id, stream_version, type,"
            " schema_version, data::text, meta::text,"
            " (extract(epoch from recorded_at) * 1000)::bigint"
            " FROM {schema}.events WHERE stream_id = ANY(%s::text[])"
            " ORDER BY stream_id, stream_version",
            schema=schema,
        )
        self.sql_reserve: LiteralString = render(
            "INSERT INTO {schema}.reservations (scope, key, owner) VALUES (%s, %s, %s)"
            " ON CONFLICT (scope, key) DO UPDATE SET owner = {schema}.reservations.owner"
            " RETURNING owner",
            schema=schema,
        )
        self.sql_release: LiteralString = render(
            "DELETE FROM {schema}.reservations WHERE scope = %s AND key = %s AND owner = %s",
            schema=schema,
        )

    async def load(
        self, conn: psycopg.AsyncConnection[Any], stream_id: str, after_version: int = 0
    ) -> list[StoredEvent]:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(self.sql_load, [stream_id, after_version])
        return [_row_to_stored(r) for r in await cur.fetchall()]

    async def load_many(
        self, conn: psycopg.AsyncConnection[Any], stream_ids: Sequence[str]
    ) -> dict[str, list[StoredEvent]]:
        """Several whole streams in one statement, by stream id (an unknown one is empty)."""
        histories: dict[str, list[StoredEvent]] = {s: [] for s in stream_ids}
        if not histories:
            return histories
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(self.sql_load_many, [list(histories)])
        for r in await cur.fetchall():
            histories[r[3]].append(_row_to_stored(r))
        return histories

    async def append_each(
        self,
        conn: psycopg.AsyncConnection[Any],
        appends: Sequence[tuple[str, int, Event, Meta]],
    ) -> list[StoredEvent | None]:
        """Append one event to each of several streams, (stream id, expected version, event,
        meta) each, in one statement. Where another writer already holds that version the event
        is skipped (None: that command's VersionConflict) and the transaction goes on. The
        streams must be distinct and loaded in this transaction first (STYLE.md 6)."""
        if not appends:
            return []
        # Rows go in stream order, so that two such statements that meet on two streams wait for
        # each other in one order (no deadlock between group commits).
        order = sorted(range(len(appends)), key=lambda k: appends[k][0])
        rows = [(a[0], a[1] + 1, a[2], a[3]) for a in (appends[k] for k in order)]
        stored = await self._append_rows(conn, self.sql_append_each, rows)
        in_order: list[StoredEvent | None] = [None] * len(stored)
        for k, event in zip(order, stored, strict=True):
            in_order[k] = event
        return in_order

    async def append_streams(
        self,
        conn: psycopg.AsyncConnection[Any],
        appends: Sequence[tuple[str, int, Sequence[Event]]],
        meta: Meta,
    ) -> list[list[StoredEvent]]:
        """`append` to several distinct streams in one statement, (stream id, expected version,
        events) each; a taken version raises VersionConflict for them all."""
        rows = [
            (stream_id, version + 1 + k, event, meta)
            for stream_id, version, events in appends
            for k, event in enumerate(events)
        ]
        try:
            stored = await self._append_rows(conn, self.sql_append_streams, rows)
        except psycopg.errors.UniqueViolation as exc:
            raise VersionConflict(appends[0][0], appends[0][1]) from exc
        out: list[list[StoredEvent]] = []
        at = 0
        for _, _, events in appends:
            out.append([e for e in stored[at : at + len(events)] if e is not None])
            at += len(events)
        return out

    async def append_rows(
        self,
        conn: psycopg.AsyncConnection[Any],
        rows: Sequence[tuple[str, int, Event, Meta]],
    ) -> list[StoredEvent]:
        """Many commands' events in one statement, (stream id, version, event, meta) each, each
        row at the version it takes; a taken version raises VersionConflict for them all. Every
        stream but fresh ones must be loaded in this transaction first (STYLE.md 6)."""
        if not rows:
            return []
        try:
            stored = await self._append_rows(conn, self.sql_append_streams, rows)
        except psycopg.errors.UniqueViolation as exc:
            raise VersionConflict(rows[0][0], rows[0][1] - 1) from exc
        return [e for e in stored if e is not None]

    async def _append_rows(
        self,
        conn: psycopg.AsyncConnection[Any],
        statement: LiteralString,
        rows: Sequence[tuple[str, int, Event, Meta]],
    ) -> list[StoredEvent | None]:
        """Insert (stream id, version, event, meta) rows in their order, in one statement; a row
        the statement skipped (ON CONFLICT) is None."""
        event_ids = [str(self.ids.event_uuid()) for _ in rows]
        types = [str(r[2].__struct_config__.tag) for r in rows]
        # The rows as one JSON document (jsonb_to_recordset): psycopg dumps a jsonb[] array by
        # escaping every element's quotes in Python, which cost more than the statement itself.
        records = [
            _Record(e=event_id, s=r[0], v=r[1], t=type_, d=r[2], m=r[3])
            for event_id, r, type_ in zip(event_ids, rows, types, strict=True)
        ]
        cur = await conn.execute(statement, [jsonb.dumps(records)])
        inserted = {row[0]: row for row in await cur.fetchall()}
        stored: list[StoredEvent | None] = []
        for event_id, (stream_id, version, event, meta), type_ in zip(
            event_ids, rows, types, strict=True
        ):
            row = inserted.get(event_id)
            stored.append(
                None
                if row is None
                else StoredEvent(
                    position=row[1],
                    tx_id=int(row[2]),
                    event_id=event_id,
                    stream_id=stream_id,
                    stream_version=version,
                    type=type_,
                    schema_version=1,
                    event=event,
                    meta=meta,
                    recorded_at=row[3],
                )
            )
        return stored

    async def append(
        self,
        conn: psycopg.AsyncConnection[Any],
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        meta: Meta,
    ) -> list[StoredEvent]:
        """Append after `expected_version`; another writer there raises VersionConflict. Must run
        inside the caller's transaction, after the stream was loaded (STYLE.md 6)."""
        if not events:
            return []
        event_ids = [str(self.ids.event_uuid()) for _ in events]
        versions = list(range(expected_version + 1, expected_version + 1 + len(events)))
        types = [str(e.__struct_config__.tag) for e in events]
        payloads = [jsonb.dumps(e) for e in events]
        meta_json = jsonb.dumps(meta)
        if len(events) == 1:
            statement = self.sql_append_one
            params: list[Any] = [
                event_ids[0],
                stream_id,
                versions[0],
                types[0],
                payloads[0],
                meta_json,
            ]
        else:
            statement = self.sql_append
            params = [stream_id, meta_json, event_ids, versions, types, payloads]
        try:
            cur = await conn.execute(statement, params)
        except psycopg.errors.UniqueViolation as exc:
            # The transaction is now aborted; execute() retries the command in a new one.
            raise VersionConflict(stream_id, expected_version) from exc
        rows = sorted(await cur.fetchall())  # identity positions follow the unnest order
        return [
            StoredEvent(
                position=row[0],
                tx_id=int(row[1]),
                event_id=event_id,
                stream_id=stream_id,
                stream_version=version,
                type=type_,
                schema_version=1,
                event=event,
                meta=meta,
                recorded_at=row[2],
            )
            for row, event_id, version, type_, event in zip(
                rows, event_ids, versions, types, events, strict=True
            )
        ]

    async def execute(
        self,
        stream_id: str,
        decider: Decider[C, S],
        command: C,
        meta: Meta,
        reactions: Sequence[Reaction] = (),
        attempts: int = 3,
        prepare: Reaction | None = None,
    ) -> Outcome[S]:
        """Load, fold, decide, append, apply the registered inline projections and run the
        command's own `reactions` (reservations, checks) in one transaction. A VersionConflict is
        retried, then surfaces as Conflict."""
        outcomes = await self.execute_all(
            [Step(stream_id, decider, command)], meta, reactions, attempts, prepare
        )
        return outcomes[0]

    async def execute_all(
        self,
        steps: Steps,
        meta: Meta | Callable[[], Meta],
        reactions: Sequence[Reaction] = (),
        attempts: int = 3,
        prepare: Reaction | None = None,
        conn: psycopg.AsyncConnection[Any] | None = None,
    ) -> list[Outcome[Any]]:
        """`execute` over several streams in one transaction. Every stream is loaded before the
        first INSERT: the relay's ordering relies on it (STYLE.md 6); a `fresh` one needs no
        load, no other transaction can append to it. `prepare` runs first in
        the transaction, before any load: reads, checks and advisory locks only, never a write
        nor a row lock (either gives the transaction its id before the loads).

        `steps` may be a function that works them out inside the transaction, right after
        `prepare` and under the same rules (e.g. a plan read under an advisory lock); a retry
        runs it again. With `conn`, everything runs once inside the caller's open transaction
        on that connection (a consumer applying an event): the caller commits and owns the
        retry, so a VersionConflict reaches it and nothing is recorded here. `meta` may be a
        function, called once the steps are planned (a command whose subject is only known from
        what it read in its transaction)."""
        if conn is not None:
            return await self._run(conn, steps, meta, reactions, prepare)
        for _ in range(attempts):
            try:
                outcomes = await self._execute_once(steps, meta, reactions, prepare)
            except VersionConflict:
                continue
            except psycopg.errors.UniqueViolation as exc:
                # In pipeline mode the violation surfaces at the sync point, not in append().
                if exc.diag.constraint_name != "events_stream_id_stream_version_key":
                    raise
                continue
            record_written([e for o in outcomes for e in o.events])  # committed
            return outcomes
        raise Conflict(
            "the resource was changed concurrently; retry", reason="eventstore.version_conflict"
        )

    async def execute_each(
        self,
        plan: Callable[[Tx], Awaitable[Sequence[Planned]]],
        attempts: int = 3,
    ) -> list[Outcome[Any] | BaseException]:
        """Group commit: many independent one-stream commands in one transaction and a handful
        of statements, whatever their number. `plan` runs first in the transaction (reads and
        checks only, like `execute_all`'s prepare) and answers, per command, its Step with its
        Meta, or the exception that refuses it. Every stream but the fresh ones is then loaded
        in one statement (before any INSERT: STYLE.md 6), each command decided on its own, and
        the events appended in one statement with per-row conflict detection, then projected.

        The answer, per command: its Outcome; a VersionConflict where another writer took its
        stream's next version (the caller retries that command alone); or the exception that
        refused it (from `plan` or its decider). A command may decide at most one event, and two
        commands may not share a stream. Committed events are not recorded for read-your-writes
        here (this runs outside the requests): each caller records its own Outcome's events."""
        for _ in range(attempts - 1):
            try:
                return await self._execute_each_once(plan)
            except psycopg.errors.DeadlockDetected:
                # Two group commits met on rows in opposite orders and PostgreSQL ended this
                # one: none of its commands happened, so the whole batch is planned again.
                continue
        return await self._execute_each_once(plan)

    async def _execute_each_once(
        self, plan: Callable[[Tx], Awaitable[Sequence[Planned]]]
    ) -> list[Outcome[Any] | BaseException]:
        async with self.pool.connection() as conn, conn.pipeline(), conn.transaction():
            planned = await plan(Tx(conn, self))
            steps = [p for p in planned if not isinstance(p, BaseException)]
            if len({p[0].stream_id for p in steps}) != len(steps):
                raise ValueError("execute_each: two commands on one stream")
            histories = await self.load_many(
                conn, [p[0].stream_id for p in steps if not p[0].fresh]
            )
            results: list[Outcome[Any] | BaseException] = []
            appends: list[tuple[str, int, Event, Meta]] = []
            pending: list[tuple[int, Step[Any, Any], int]] = []  # result index, step, version
            for item in planned:
                if isinstance(item, BaseException):
                    results.append(item)
                    continue
                step, meta = item
                history = [] if step.fresh else histories[step.stream_id]
                state = fold(step.decider, history)
                try:
                    new_events = step.decider.decide(step.command, state)
                except Exception as exc:  # the command's own refusal; the others go on
                    results.append(exc)
                    continue
                if len(new_events) > 1:
                    raise ValueError("execute_each: a command decided more than one event")
                results.append(Outcome(state, len(history), []))
                if new_events:
                    appends.append((step.stream_id, len(history), new_events[0], meta))
                    pending.append((len(results) - 1, step, len(history)))
            stored = await self.append_each(conn, appends)
            committed: list[StoredEvent] = []
            for (index, step, version), event in zip(pending, stored, strict=True):
                before = results[index]
                assert isinstance(before, Outcome)
                if event is None:
                    results[index] = VersionConflict(step.stream_id, version)
                    continue
                state = step.decider.evolve(before.state, event.event)
                results[index] = Outcome(state, version + 1, [event])
                committed.append(event)
            if committed:
                await self.project(conn, committed)
        return results

    async def _execute_once(
        self,
        steps: Steps,
        meta: Meta | Callable[[], Meta],
        reactions: Sequence[Reaction],
        prepare: Reaction | None,
    ) -> list[Outcome[Any]]:
        # Pipeline mode: BEGIN travels with the first load and COMMIT with the last write, so a
        # command costs two round trips instead of four.
        async with self.pool.connection() as conn, conn.pipeline(), conn.transaction():
            return await self._run(conn, steps, meta, reactions, prepare)

    async def _run(
        self,
        conn: psycopg.AsyncConnection[Any],
        steps: Steps,
        planned_meta: Meta | Callable[[], Meta],
        reactions: Sequence[Reaction],
        prepare: Reaction | None,
    ) -> list[Outcome[Any]]:
        if prepare is not None:
            await prepare(Tx(conn, self))
        planned = await steps(Tx(conn, self)) if callable(steps) else steps
        meta = planned_meta() if callable(planned_meta) else planned_meta
        stream_ids = [step.stream_id for step in planned]
        distinct = len(set(stream_ids)) == len(stream_ids) > 1
        if distinct:  # every stream in one statement, then every event in one
            loaded = await self.load_many(conn, [s.stream_id for s in planned if not s.fresh])
            histories = [[] if s.fresh else loaded[s.stream_id] for s in planned]
            decided: list[tuple[Any, list[Event]]] = []
            for step, history in zip(planned, histories, strict=True):
                state = fold(step.decider, history)
                decided.append((state, step.decider.decide(step.command, state)))
            writes = [
                (step.stream_id, len(history), new_events)
                for step, history, (_, new_events) in zip(planned, histories, decided, strict=True)
                if new_events
            ]
            written = iter(await self.append_streams(conn, writes, meta) if writes else [])
            outcomes: list[Outcome[Any]] = []
            all_stored: list[StoredEvent] = []
            for step, history, (state, new_events) in zip(planned, histories, decided, strict=True):
                stored = next(written) if new_events else []
                for event in new_events:
                    state = step.decider.evolve(state, event)
                outcomes.append(Outcome(state, len(history) + len(stored), stored))
                all_stored += stored
        else:
            histories = [
                [] if step.fresh else await self.load(conn, step.stream_id) for step in planned
            ]
            outcomes = []
            all_stored = []
            for step, history in zip(planned, histories, strict=True):
                state = fold(step.decider, history)
                new_events = step.decider.decide(step.command, state)
                stored = await self.append(conn, step.stream_id, len(history), new_events, meta)
                for event in new_events:
                    state = step.decider.evolve(state, event)
                outcomes.append(Outcome(state, len(history) + len(stored), stored))
                all_stored += stored
        if all_stored:
            await self.project(conn, all_stored)
            tx = Tx(conn, self, all_stored)
            for reaction in reactions:
                await reaction(tx)
        return outcomes

    async def project(
        self,
        conn: psycopg.AsyncConnection[Any],
        stored: Sequence[StoredEvent],
        *,
        by_view: bool = False,
    ) -> None:
        """Apply each event to the registered projections that declare its type. Several events
        of one type go to a projection's `apply_many` when it has one (one statement); events of
        one type keep their order, and each projection applies them in commit order otherwise.

        `by_view`: the caller knows that the views these events reach write rows no other of
        them reads in this transaction, so each view takes all its events of the batch at once,
        whatever their types (its `apply_many`, in order; what that leaves, one by one)."""
        if by_view and len(stored) > 1:
            views: dict[int, tuple[InlineProjection, list[StoredEvent]]] = {}
            for event in stored:
                for projection in self._routes.get(event.type, ()):
                    views.setdefault(id(projection), (projection, []))[1].append(event)
            for projection, mine in views.values():
                rest: Sequence[StoredEvent] = mine
                apply_many: ApplyMany | None = getattr(projection, "apply_many", None)
                if apply_many is not None and len(mine) > 1:
                    rest = await apply_many(conn, mine)
                for event in rest:
                    await projection.apply(conn, event)
            return
        if len(stored) > 1 and len({e.type for e in stored}) == 1:
            for projection in self._routes.get(stored[0].type, ()):
                rest = stored
                apply_many: ApplyMany | None = getattr(projection, "apply_many", None)
                if apply_many is not None:
                    rest = await apply_many(conn, stored)
                for event in rest:
                    await projection.apply(conn, event)
            return
        for event in stored:
            for projection in self._routes.get(event.type, ()):
                await projection.apply(conn, event)

    async def read_state(self, stream_id: str, decider: Decider[C, S]) -> tuple[S, int]:
        async with self.pool.connection() as conn:
            history = await self.load(conn, stream_id)
        return fold(decider, history), len(history)


def fold(decider: Decider[Any, S], history: Sequence[StoredEvent]) -> S:
    state = decider.INITIAL
    for stored in history:
        state = decider.evolve(state, stored.event)
    return state


def _row_to_stored(r: tuple[Any, ...]) -> StoredEvent:
    return StoredEvent(
        position=r[0],
        tx_id=int(r[1]),
        event_id=r[2],
        stream_id=r[3],
        stream_version=r[4],
        type=r[5],
        schema_version=r[6],
        event=decode_event(r[7]),
        meta=_meta_decoder.decode(r[8]),
        recorded_at=r[9],
    )
