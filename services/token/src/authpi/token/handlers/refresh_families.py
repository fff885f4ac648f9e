"""The write path of refresh-token rotation (idp-api.md 5.4, 12.3): one transaction per refresh
that reads the family and its session in one statement (judged by the caller's `check`),
appends `refresh-token.rotated` to the presented token's own stream and lets the inline views
move the family's current jti and the session's activity. Why one stream per token, and how
that makes reuse detection exact, is in domain.refresh_family."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg

from authpi.contracts.base import Meta
from authpi.eventstore.store import EventStore, Step, Tx
from authpi.token.domain import refresh_family
from authpi.token.domain.refresh_family import Rotate, Rotated
from authpi.token.handlers.sessions import family_end, refresh_stream
from authpi.token.queries.sessions import FamilyRef, FamilyRow, SessionQueries, SessionRow

T = TypeVar("T")
R = TypeVar("R")
Check = Callable[[FamilyRow, SessionRow | None], T]
Read = Callable[[psycopg.AsyncConnection[Any]], Awaitable[Callable[[], Awaitable[R]]]]


class FamilyEnded(Exception):
    """The family is unknown to this issuer or revoked."""


class Replayed(Exception):
    """The presented refresh token was already rotated: a replay of an old token."""

    def __init__(self, family: FamilyRow) -> None:
        super().__init__("refresh token reused")
        self.family = family


class RefreshFamilies:
    def __init__(self, store: EventStore, queries: SessionQueries) -> None:
        self.store = store
        self.queries = queries

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
        read: Read[R],
    ) -> tuple[FamilyRow, T, R]:
        """Rotate `jti` to `next_jti` once `check` (reads and refusals, inside the transaction)
        passed; Replayed when `jti` was rotated before, FamilyEnded when the family is over.
        `read` sends a read of the same transaction before the family's (one round trip for
        both) and returns the function that takes its answer (or refuses) once the family is
        checked: what the tokens say of the user, read with the rotation."""
        seen: list[tuple[FamilyRow, T, R]] = []

        async def plan(tx: Tx) -> list[Step[Any, Any]]:
            seen.clear()
            answer = await read(tx.conn)
            family, session = await self.queries.family_and_session(tx.conn, family_id)
            if family is None or family.issuer_id != issuer_id or family.status != "active":
                raise FamilyEnded()
            if family.current_jti != jti:
                raise Replayed(family)
            checked = check(family, session)
            seen.append((family, checked, await answer()))
            cmd = Rotate(
                family_id=family_id,
                issuer_id=issuer_id,
                session_id=family.session_id,
                jti=jti,
                next_jti=next_jti,
                rotated_at=now,
            )
            return [Step(refresh_stream(jti), refresh_family, cmd)]

        outcome = (await self.store.execute_all(plan, meta))[0]
        family, checked, found = seen[-1]
        if not outcome.events:
            # A concurrent refresh of the same token won the stream (we were retried).
            if isinstance(outcome.state, Rotated):
                raise Replayed(family)
            raise FamilyEnded()
        return family, checked, found


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
