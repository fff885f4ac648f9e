"""The write path of authorization-code exchanges (idp-api.md 5.3, 11.1), as a group commit like
refresh rotations (handlers.refresh_families): the exchanges that arrive while a transaction is
in flight wait and go together in the next one.

One transaction, whatever the number of exchanges in it:
* reads their codes in one statement, each judged by its caller's `check` (client, use, expiry,
  redirect URI, PKCE);
* reads their users, then their op sessions with the rp sessions each new one evicts (a user
  keeps 50), in two statements of one round trip, each judged by its caller's `judge`;
* appends every exchange's events (the rp session, its refresh family, the evictions) in one
  statement, the new streams unloaded (fresh random ids) and the evicted ones loaded first;
* applies the inline views, then consumes the codes in one conditional UPDATE that records what
  each one issued.

Codes are single-use exactly as with one exchange per transaction: a code another transaction
consumed first (the UPDATE waits on its row until that one commits) rolls the batch back, that
exchange is refused as a replay (CodeUsed) and the others are planned again. At most one exchange
per user goes in a transaction (the others wait for the next one), so each one's evictions are
those it would find alone, and a code presented twice is used by one and found used by the other.
One exchange's refusal never fails the others of its batch; nothing is answered before the
commit, and each request records the events it committed (read-your-writes)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import psycopg

from authpi.contracts.base import Event, Meta
from authpi.contracts.sessions import Device
from authpi.errors import Conflict, VersionConflict
from authpi.eventstore.store import EventStore, Step, StoredEvent, Tx, fold, record_written
from authpi.token.domain import refresh_family, session
from authpi.token.domain.refresh_family import StartFamily
from authpi.token.domain.session import CreateSession
from authpi.token.grants.codes import CodeGrant, Codes, CodeUsed, Issued, StoredCode
from authpi.token.handlers.sessions import Sessions, refresh_stream, session_stream
from authpi.token.queries.people import People, Person, PersonRequest
from authpi.token.queries.sessions import MAX_LIVE_SESSIONS, SessionQueries, SessionRow

T = TypeVar("T")

# Exchanges per transaction. With many in flight (bench_login at 128 connections: about 85 on a
# worker) a cap of 64 left the rest for the next transaction; at 128 a run's CPU per exchange was
# 0.81 ms against 0.85 (two alternated runs each).
MAX_BATCH = 128
ATTEMPTS = 3
LINGER_TURNS = 2  # event-loop turns a transaction waits for more exchanges before it starts
# Under load (the last transaction took more than one exchange) a transaction also waits this
# long: the exchanges it gathers share its statements instead of paying for a transaction each.
LINGER_S = 0.001
MAX_WAITS = 200  # transactions an exchange may wait out behind other exchanges of its user


class _Deferred(Exception):
    """Another exchange of the same user is in this transaction: wait for the next one."""


@dataclass
class _Exchange(Generic[T]):
    issuer_id: str
    code: str
    client_id: str
    session_id: str
    idle_timeout: int  # s
    expires_at: int  # ms
    now: int
    issued: Issued
    # The caller's checks: of the code as read (its grant, else raises), then of its op session
    # and user as read (what the caller keeps, else raises).
    check: Callable[[StoredCode | None], CodeGrant]
    judge: Callable[[CodeGrant, SessionRow | None, Person | None], T]
    person: Callable[[CodeGrant], PersonRequest]
    family: Callable[[CodeGrant, T], StartFamily | None]  # from what `judge` kept
    meta: Callable[[CodeGrant], Meta]
    done: asyncio.Future[tuple[T, list[StoredEvent]]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass
class _Planned:
    item: _Exchange[Any]
    grant: CodeGrant
    checked: Any
    steps: list[Step[Any, Any]]
    meta: Meta
    events: list[StoredEvent] = field(default_factory=list[StoredEvent])


class _Used(Exception):
    """Codes of the batch another transaction consumed first: the batch rolls back."""

    def __init__(self, codes: set[str]) -> None:
        super().__init__("codes consumed concurrently")
        self.codes = codes


class CodeExchanges:
    def __init__(
        self,
        store: EventStore,
        codes: Codes,
        sessions: Sessions,
        queries: SessionQueries,
        people: People,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.store = store
        self.codes = codes
        self.sessions = sessions
        self.queries = queries
        self.people = people
        self.max_batch = max_batch
        self._queue: deque[_Exchange[Any]] = deque()
        self._in_flight = False
        self._last_batch = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def exchange(
        self,
        *,
        issuer_id: str,
        code: str,
        client_id: str,
        session_id: str,
        idle_timeout: int,
        expires_at: int,
        now: int,
        issued: Issued,
        check: Callable[[StoredCode | None], CodeGrant],
        judge: Callable[[CodeGrant, SessionRow | None, Person | None], T],
        person: Callable[[CodeGrant], PersonRequest],
        family: Callable[[CodeGrant, T], StartFamily | None],
        meta: Callable[[CodeGrant], Meta],
    ) -> T:
        """Open the client's rp session `session_id` (and the family `family` names) from
        `code` once `check` and `judge` passed, its absolute expiry `expires_at` (ms), and
        consume the code: what `judge` answered. CodeUsed when another exchange used the code."""
        for _ in range(MAX_WAITS):
            item = _Exchange(
                issuer_id, code, client_id, session_id, idle_timeout, expires_at, now,
                issued, check, judge, person, family, meta,
            )  # fmt: skip
            self._queue.append(item)
            self._kick()
            try:
                checked, events = await item.done
            except _Deferred:
                continue
            record_written(events)  # committed: this request's read-your-writes
            return checked
        raise Conflict(
            "the resource was changed concurrently; retry", reason="eventstore.version_conflict"
        )

    def _kick(self) -> None:
        if self._queue and not self._in_flight:
            self._in_flight = True
            task = asyncio.create_task(self._commit())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _commit(self) -> None:
        batch: list[_Exchange[Any]] = []
        try:
            for _ in range(LINGER_TURNS):
                await asyncio.sleep(0)
            if self._last_batch > 1 and len(self._queue) < self.max_batch:
                await asyncio.sleep(LINGER_S)
            while self._queue and len(batch) < self.max_batch:
                batch.append(self._queue.popleft())
            self._last_batch = len(batch)
            await self._run(batch)
        except BaseException as exc:
            for item in batch:
                if not item.done.done():
                    item.done.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._in_flight = False
            self._kick()

    async def _run(self, batch: list[_Exchange[Any]]) -> None:
        pending = [i for i in batch if not i.done.done()]  # a request may have gone
        conflicts = 0
        while pending:
            try:
                planned = await self._once(pending)
            except _Used as used:
                for item in pending:
                    if item.code in used.codes:
                        item.done.set_exception(CodeUsed())
                pending = [i for i in pending if not i.done.done()]
                continue
            except (
                VersionConflict,
                psycopg.errors.DeadlockDetected,
                psycopg.errors.UniqueViolation,
            ) as exc:
                # In pipeline mode a taken stream version surfaces at the sync point.
                if (
                    isinstance(exc, psycopg.errors.UniqueViolation)
                    and exc.diag.constraint_name != "events_stream_id_stream_version_key"
                ):
                    raise
                conflicts += 1
                if conflicts >= ATTEMPTS:
                    raise Conflict(
                        "the resource was changed concurrently; retry",
                        reason="eventstore.version_conflict",
                    ) from exc
                continue
            for p in planned:  # committed
                if not p.item.done.done():
                    p.item.done.set_result((p.checked, p.events))
            return

    async def _once(self, pending: list[_Exchange[Any]]) -> list[_Planned]:
        """One transaction over `pending`; refusals are settled on their futures, the others
        answered once the caller sees the commit."""
        refusals: list[tuple[_Exchange[Any], BaseException]] = []
        async with (
            self.store.pool.connection() as conn,
            conn.pipeline(),
            conn.transaction(),
        ):
            tx = Tx(conn, self.store)
            stored = await self.codes.read_many(conn, [(i.issuer_id, i.code) for i in pending])
            checked: list[tuple[_Exchange[Any], CodeGrant]] = []
            users: set[tuple[str, str]] = set()
            for item in pending:
                try:
                    grant = item.check(stored.get(item.code))
                except Exception as exc:  # this exchange's refusal only
                    refusals.append((item, exc))
                    continue
                if (item.issuer_id, grant.user_id) in users:
                    refusals.append((item, _Deferred()))
                    continue
                users.add((item.issuer_id, grant.user_id))
                checked.append((item, grant))
            planned: list[_Planned] = []
            if checked:
                receive_persons = await self.people.send_persons(
                    conn, [item.person(grant) for item, grant in checked]
                )
                receive_sessions = await self.queries.send_sessions_and_evictable(
                    conn,
                    [g.op_session_id for _, g in checked],
                    [(item.issuer_id, grant.user_id) for item, grant in checked],
                    "rp",
                    checked[0][0].now,
                    MAX_LIVE_SESSIONS - 1,
                )
                persons = await receive_persons()
                ops, excess = await receive_sessions()
                for (item, grant), person, evict in zip(checked, persons, excess, strict=True):
                    op = ops.get(grant.op_session_id)
                    try:
                        kept = item.judge(grant, op, person)
                    except Exception as exc:
                        refusals.append((item, exc))
                        continue
                    assert op is not None  # judge refuses an exchange without its op session
                    steps = await self._steps(tx, item, grant, op, evict, kept)
                    planned.append(_Planned(item, grant, kept, steps, item.meta(grant)))
            if planned:
                refused = await self._write(tx, planned)
                refusals += refused
                planned = [p for p in planned if all(p.item is not r[0] for r in refused)]
        # Committed (or nothing written): settle the refusals, hand back the rest.
        for item, exc in refusals:
            if not item.done.done():
                item.done.set_exception(exc)
        return planned

    async def _steps(
        self,
        tx: Tx,
        item: _Exchange[Any],
        grant: CodeGrant,
        op: SessionRow,
        evict: list[str],
        kept: Any,
    ) -> list[Step[Any, Any]]:
        create = CreateSession(
            session_id=item.session_id,
            issuer_id=op.issuer_id,
            account_id=op.account_id,
            user_id=op.user_id,
            type="rp",
            client_id=item.client_id,
            op_session_id=op.id,
            auth_method=op.auth_method,
            auth_time=op.auth_time,
            device=Device(**{k: v for k, v in op.device.items() if k in ("user_agent", "ip")}),
            idle_timeout=item.idle_timeout,
            expires_at=item.expires_at,
            created_at=item.now,
        )
        steps = await self.sessions.evicted(tx, evict, item.now)
        # The new session and family streams are named from fresh random ids: not loaded.
        steps.append(Step(session_stream(item.session_id), session, create, fresh=True))
        family = item.family(grant, kept)
        if family is not None:
            steps.append(Step(refresh_stream(family.jti), refresh_family, family, fresh=True))
        return steps

    async def _write(
        self, tx: Tx, planned: list[_Planned]
    ) -> list[tuple[_Exchange[Any], BaseException]]:
        """Load the evicted streams, decide, append every event in one statement, project, and
        consume the codes; a code consumed meanwhile raises _Used (the batch rolls back). The
        exchanges a decider refused, with why."""
        conn = tx.conn
        # One order of row locks for every batch (the op sessions' activity, the evicted
        # sessions): two concurrent batches wait for each other instead of deadlocking.
        planned.sort(key=lambda p: p.grant.op_session_id)
        loaded = await self.store.load_many(
            conn, [s.stream_id for p in planned for s in p.steps if not s.fresh]
        )
        rows: list[tuple[str, int, Event, Meta]] = []
        owners: list[_Planned] = []
        refused: list[tuple[_Exchange[Any], BaseException]] = []
        writing: list[_Planned] = []
        for p in planned:
            mine: list[tuple[str, int, Event, Meta]] = []
            try:
                for step in p.steps:
                    history = [] if step.fresh else loaded[step.stream_id]
                    state = fold(step.decider, history)
                    for k, event in enumerate(step.decider.decide(step.command, state)):
                        mine.append((step.stream_id, len(history) + 1 + k, event, p.meta))
            except Exception as exc:  # this exchange's refusal only
                refused.append((p.item, exc))
                continue
            rows += mine
            owners += [p] * len(mine)
            writing.append(p)
        if not writing:
            return refused
        stored = await self.store.append_rows(conn, rows)
        for p, event in zip(owners, stored, strict=True):
            p.events.append(event)
        # The views: first the evictions, then the new sessions with their families' start,
        # each view in one statement (by view: the sessions view inserts each new session with
        # what its family's start sets, the families view inserts the families; neither reads
        # the other's rows).
        kinds = ("session.created", "refresh-family.started")
        evictions = [e for e in stored if e.type not in kinds]
        if evictions:
            await self.store.project(conn, evictions)
        opened = [e for e in stored if e.type in kinds]
        if opened:
            await self.store.project(conn, opened, by_view=True)
        used = await self.codes.consume_many(
            conn, [(p.item.code, p.item.issued, p.item.now) for p in writing]
        )
        if used:
            raise _Used(used)
        return refused
