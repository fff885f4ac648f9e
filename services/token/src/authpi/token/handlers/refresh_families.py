"""The write path of refresh-token rotation (idp-api.md 5.4, 12.3), as a group commit: the
refreshes that arrive while a rotation transaction is in flight wait and go together in the
next one. One transaction, whatever the number of refreshes in it, reads their users, families
and sessions in two statements (each judged by its caller's `check`), appends each
`refresh-token.rotated` to its presented token's own stream in one statement with per-stream
conflict detection, and lets the inline views move the families' current jti and the sessions'
activity in two more (EventStore.execute_each). Why one stream per token, and how that makes
reuse detection exact, is in domain.refresh_family: here too, of two uses of one token, in one
batch or in two concurrent ones, exactly one appends; the other is retried and finds the token
rotated (a replay). One refresh's refusal never fails the others of its batch.

Authenticity: the presented token's claims are read before its signature is checked. The
family's view holds the SHA-256 of its current token as issued (each rotation records the next
one's), so a token equal to it is the very token this issuer signed and handed out: proven
without the signature check, the costliest step of a refresh. Any other token (an older
generation, one of a family whose digest was not recorded, a forgery) is proven by its
signature before anything is decided on its claims: a replay ends a family only when the
replayed token is genuine, and a forged one is refused as invalid (NotProven), ending nothing.
That check runs in the request's own task, outside the batch's transaction (the rotation is then
planned again, its token proven), so that forged tokens never hold up the refreshes they share a
transaction with."""

from __future__ import annotations

import asyncio
import hmac
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from authpi.contracts.base import Meta
from authpi.errors import Conflict, VersionConflict
from authpi.eventstore.store import EventStore, Outcome, Planned, Step, Tx, record_written
from authpi.token.domain import refresh_family
from authpi.token.domain.refresh_family import Rotate, Rotated
from authpi.token.handlers.sessions import family_end, refresh_stream
from authpi.token.queries.people import People, Person, PersonRequest
from authpi.token.queries.sessions import FamilyRef, FamilyRow, SessionQueries, SessionRow

T = TypeVar("T")
# What the caller judged and minted, with the SHA-256 of the next refresh token it minted.
Check = Callable[[FamilyRow, SessionRow | None, Person | None], tuple[T, str | None]]

MAX_BATCH = 64  # refreshes per transaction
MAX_IN_FLIGHT = 1  # rotation transactions at once per process
ATTEMPTS = 3
LINGER_TURNS = 2  # event-loop turns a transaction waits for more refreshes before it starts
# Under load (the last transaction took more than one refresh) a transaction also waits this
# long: the refreshes it gathers share its statements instead of paying for a transaction each.
LINGER_S = 0.001


class FamilyEnded(Exception):
    """The family is unknown to this issuer or revoked."""


class NotProven(Exception):
    """The presented token is not the family's current one and its signature does not hold."""


class _Unproven(Exception):
    """The token is not the family's current one as issued: its signature decides."""


class Replayed(Exception):
    """The presented refresh token was already rotated: a replay of an old token."""

    def __init__(self, family: FamilyRow) -> None:
        super().__init__("refresh token reused")
        self.family = family


@dataclass
class _Rotation(Generic[T]):
    issuer_id: str
    family_id: str
    jti: str
    next_jti: str
    now: int
    meta: Meta
    person: PersonRequest
    check: Check[T]
    sha256: str  # of the presented token
    signed: bool  # its signature was found to hold
    done: asyncio.Future[tuple[FamilyRow, T, Outcome[Any]] | VersionConflict] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class RefreshFamilies:
    def __init__(
        self,
        store: EventStore,
        queries: SessionQueries,
        people: People,
        max_batch: int = MAX_BATCH,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.store = store
        self.queries = queries
        self.people = people
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self._queue: deque[_Rotation[Any]] = deque()
        self._in_flight = 0
        self._last_batch = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def rotate(
        self,
        *,
        issuer_id: str,
        family_id: str,
        jti: str,
        next_jti: str,
        now: int,
        check: Check[T],
        meta: Meta,
        person: PersonRequest,
        sha256: str,
        authentic: Callable[[], bool],
    ) -> T:
        """Rotate `jti` to `next_jti` once the presented token (its SHA-256 `sha256`) is proven
        and `check` passed (it judges, inside the transaction, the family, its session and the
        user as read there, and refuses by raising, or mints); Replayed when `jti` was rotated
        before, FamilyEnded when the family is over, NotProven for a token this issuer did not
        sign (`authentic` checks its signature, when its digest is not the family's own)."""
        signed = False
        attempts = 0
        while attempts < ATTEMPTS:
            item = _Rotation(
                issuer_id, family_id, jti, next_jti, now, meta, person, check, sha256, signed
            )
            self._queue.append(item)
            self._kick()
            try:
                result = await item.done
            except _Unproven:
                if signed or not authentic():
                    raise NotProven() from None
                signed = True  # planned again, proven
                continue
            if isinstance(result, VersionConflict):
                attempts += 1
                continue  # another use of this token took its stream: planned again
            family, checked, outcome = result
            record_written(outcome.events)  # committed: this request's read-your-writes
            if not outcome.events:
                if isinstance(outcome.state, Rotated):
                    raise Replayed(family)
                raise FamilyEnded()
            return checked
        raise Conflict(
            "the resource was changed concurrently; retry", reason="eventstore.version_conflict"
        )

    def _kick(self) -> None:
        while self._queue and self._in_flight < self.max_in_flight:
            self._in_flight += 1
            task = asyncio.create_task(self._commit())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _commit(self) -> None:
        batch: list[_Rotation[Any]] = []
        try:
            # Let the requests that are ready to run reach the queue first: when the process is
            # busy they join this transaction instead of each paying for one of their own.
            for _ in range(LINGER_TURNS):
                await asyncio.sleep(0)
            if self._last_batch > 1 and len(self._queue) < self.max_batch:
                await asyncio.sleep(LINGER_S)
            while self._queue and len(batch) < self.max_batch:
                batch.append(self._queue.popleft())
            if not batch:
                return
            self._last_batch = len(batch)
            seen: list[tuple[FamilyRow, Any] | None] = []

            async def plan(tx: Tx) -> list[Planned]:
                seen.clear()
                receive = await self.people.send_persons(tx.conn, [i.person for i in batch])
                found = await self.queries.families_and_sessions(
                    tx.conn, list({i.family_id for i in batch})
                )
                persons = await receive()
                planned: list[Planned] = []
                streams: set[str] = set()
                for item, person in zip(batch, persons, strict=True):
                    seen.append(None)
                    family, session = found.get(item.family_id, (None, None))
                    stream = refresh_stream(item.jti)
                    if not item.signed and not _issued(item, family):
                        planned.append(_Unproven())
                    elif family is None or family.issuer_id != item.issuer_id:
                        planned.append(FamilyEnded())
                    elif family.status != "active":
                        planned.append(FamilyEnded())
                    elif family.current_jti != item.jti:
                        planned.append(Replayed(family))
                    elif stream in streams:
                        # A second use of one token in one batch: it lost, as it would to a
                        # concurrent transaction, and is planned again (then a replay).
                        planned.append(VersionConflict(stream, 0))
                    else:
                        try:
                            checked, next_sha256 = item.check(family, session, person)
                        except Exception as exc:  # this refresh's refusal only
                            planned.append(exc)
                            continue
                        seen[-1] = (family, checked)
                        streams.add(stream)
                        cmd = Rotate(
                            family_id=item.family_id,
                            issuer_id=item.issuer_id,
                            session_id=family.session_id,
                            jti=item.jti,
                            next_jti=item.next_jti,
                            rotated_at=item.now,
                            next_token_sha256=next_sha256,
                        )
                        # A later generation's token has an empty stream while the view
                        # names it current (the family's start is in its first token's stream):
                        # not loaded. Another use of it that appended first makes this append a
                        # VersionConflict, and the retry finds the token rotated (a replay).
                        fresh = family.generation > 0
                        planned.append((Step(stream, refresh_family, cmd, fresh), item.meta))
                return planned

            results = await self.store.execute_each(plan)
        except BaseException as exc:
            for item in batch:
                if not item.done.done():  # its request may have gone (cancelled)
                    item.done.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            self._in_flight -= 1
            self._kick()
        for item, result, checked in zip(batch, results, seen, strict=True):
            if item.done.done():
                continue
            if isinstance(result, VersionConflict):
                item.done.set_result(result)
            elif isinstance(result, BaseException):
                item.done.set_exception(result)
            else:
                assert checked is not None
                item.done.set_result((checked[0], checked[1], result))


def _issued(item: _Rotation[Any], family: FamilyRow | None) -> bool:
    """Whether the presented token is exactly the family's current token as issued."""
    return (
        family is not None
        and family.current_jti == item.jti
        and family.current_sha256 is not None
        and hmac.compare_digest(family.current_sha256, item.sha256)
    )


class FamilyRevocations:
    """RFC 7009 for refresh tokens (idp-api.md 7.2): revoking one ends its whole family."""

    def __init__(self, store: EventStore, queries: SessionQueries) -> None:
        self.store = store
        self.queries = queries

    async def revoke(
        self, *, issuer_id: str, family_id: str, client_id: str, reason: str, now: int, meta: Meta
    ) -> None:
        async def plan(tx: Tx) -> list[Step[Any, Any]]:
            family = await self.queries.family(tx.conn, family_id)
            if (
                family is None
                or family.issuer_id != issuer_id
                or family.client_id != client_id
                or family.status != "active"
            ):
                return []
            ref = FamilyRef(family.id, family.session_id, family.current_jti, family.issuer_id)
            return [family_end(ref, reason, now)]

        await self.store.execute_all(plan, meta)
