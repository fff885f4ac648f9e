"""Signup, invitation answers and organization SSO sign-in from the token service's side: the
directory creates the user (its UserRegistry), answers an invitation (its InvitationAnswers) and
signs a user in through an organization's SSO (its SsoDirectory), all wired in by the platform
host (in-process in the all-in-one topology), and each call here answers once this service's own
projections hold the result: the new user (token-users), the acceptance (token-invitations) and
the membership (token-organizations), so the portal signs the user in at once and the next token
carries the organization (read-your-writes, DESIGN.md 3).

The wait is on observable state, bounded: those projections notify `users_channel` with the id
of the user or invitation they apply an event of, in the same commit; `UserArrivals` (one LISTEN
connection per process, a worker task) wakes the waiters of that id, and each waiter re-reads
its rows. The rows are read after the waiter is in place, so a notice sent before that is never
missed; a lost LISTEN connection only makes the waiter re-read each second until its deadline."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from authpi.contracts.directory import (
    InvitationAnswers,
    SsoDirectory,
    SsoIdentity,
    SsoSignIn,
    UserRegistry,
)
from authpi.errors import TemporarilyUnavailable
from authpi.eventstore.sqltext import render
from authpi.observability import get_logger
from authpi.token.queries.invitations import InvitationQueries, InvitationRow
from authpi.token.queries.people import People, UserRecord

log = get_logger("authpi.token.registry")

REGISTER_WAIT_S = 10.0  # the longest a call waits for this service's projections
RECHECK_S = 1.0  # re-read the row at least this often while waiting (a safety net)


class UserArrivals:
    """Wakes whoever waits for an id (a user's, an invitation's) when one of this service's
    projections applies an event of it (`reactions.people.users_channel`)."""

    def __init__(self, dsn: str, channel: str) -> None:
        self.dsn = dsn
        self._listen = render("LISTEN {channel}", channel=channel)
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def watch(self, *ids: str) -> Iterator[asyncio.Event]:
        """One event, set when any of `ids` is notified."""
        event = asyncio.Event()
        for key in ids:
            self._waiters.setdefault(key, set()).add(event)
        try:
            yield event
        finally:
            for key in ids:
                waiters = self._waiters.get(key)
                if waiters is not None:
                    waiters.discard(event)
                    if not waiters:
                        del self._waiters[key]

    async def follow(self, stop: asyncio.Event) -> None:
        """Worker task: one LISTEN connection for the process."""
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            await conn.execute(self._listen)
            self.listening.set()
            try:
                while not stop.is_set():
                    async for notice in conn.notifies(timeout=1.0):
                        for event in self._waiters.get(notice.payload, ()):
                            event.set()
            finally:
                self.listening.clear()


Check = Callable[[psycopg.AsyncConnection[Any]], Awaitable[Any]]


class Registry:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        people: People,
        arrivals: UserArrivals,
        invitations: InvitationQueries,
        wait_s: float = REGISTER_WAIT_S,
    ) -> None:
        self.pool = pool
        self.people = people
        self.arrivals = arrivals
        self.invitations = invitations
        self.wait_s = wait_s
        self._directory: UserRegistry | None = None
        self._answers: InvitationAnswers | None = None
        self._sso: SsoDirectory | None = None

    def connect(self, directory: UserRegistry, answers: InvitationAnswers | None = None) -> None:
        """Wired by the platform host to the directory's UserRegistry and InvitationAnswers."""
        self._directory = directory
        self._answers = answers

    def connect_sso(self, directory: SsoDirectory) -> None:
        """Wired by the platform host to the directory's SsoDirectory."""
        self._sso = directory

    @property
    def connected(self) -> bool:
        return self._directory is not None

    async def sso_sign_in(
        self, *, account_id: str, issuer_id: str, org_id: str, identity: SsoIdentity
    ) -> tuple[SsoSignIn, UserRecord]:
        """An organization SSO sign-in (contracts SsoDirectory): the user as this service sees
        it, once token-users holds it and, when the sign-in made it a member, token-organizations
        holds the membership (so the tokens about to be issued carry the organization)."""
        if self._sso is None:
            raise TemporarilyUnavailable(
                "single sign-on is not available", reason="sso.unavailable"
            )
        result = await self._sso.sign_in(
            account_id=account_id, issuer_id=issuer_id, org_id=org_id, identity=identity
        )
        member_of = org_id if result.joined else None
        return result, await self.arrived(result.user_id, member_of=member_of)

    async def register(
        self,
        *,
        account_id: str,
        issuer_id: str,
        username_type: str,
        username: str,
        profile: dict[str, Any],
    ) -> UserRecord:
        """A new user of the issuer, as this service sees it. Raises authpi.errors.Conflict
        (reason `user.username`) when the username is taken, and whatever else the directory
        refuses (Unprocessable, NotFound); TemporarilyUnavailable when this service has not seen
        the new user within the bound."""
        if self._directory is None:
            raise TemporarilyUnavailable("signup is not available", reason="signup.unavailable")
        user_id = await self._directory.register(
            account_id=account_id, issuer_id=issuer_id, username_type=username_type,
            username=username, profile=profile, method="signup",
        )  # fmt: skip
        return await self.arrived(user_id)

    async def arrived(self, user_id: str, *, member_of: str | None = None) -> UserRecord:
        """The user once token-users holds it (and token-organizations its membership of
        `member_of`, when given), waiting at most `wait_s`."""

        async def user(conn: psycopg.AsyncConnection[Any]) -> UserRecord | None:
            record = await self.people.user(conn, user_id)
            if record is None or member_of is None:
                return record
            return record if await self.people.member(conn, user_id, member_of) else None

        return await self._until([user_id], user, "the new user")

    async def register_invited(
        self, invitation: InvitationRow, token: str, *, username: str, profile: dict[str, Any]
    ) -> UserRecord:
        """Sign up with the invited address and accept (one commit in the directory); answers
        once this service holds the new user, the acceptance and the membership, so the next
        token carries the organization. Refusals as `InvitationAnswers` says."""
        user_id = await self._invitation_desk().register_invited(
            account_id=invitation.account_id, issuer_id=invitation.issuer_id, token=token,
            username=username, profile=profile,
        )  # fmt: skip
        await self._joined(invitation, user_id)
        return await self.arrived(user_id)

    async def accept(self, invitation: InvitationRow, token: str, user_id: str) -> None:
        """Accept as the signed-in `user_id`; answers once this service holds the membership."""
        await self._invitation_desk().answer(
            invitation.issuer_id, token, accept=True, user_id=user_id
        )
        await self._joined(invitation, user_id)

    async def decline(self, invitation: InvitationRow, token: str) -> None:
        """Record the decline; answers once this service shows the invitation declined."""
        await self._invitation_desk().answer(invitation.issuer_id, token, accept=False)

        async def declined(conn: psycopg.AsyncConnection[Any]) -> bool:
            return await self.invitations.status_is(conn, invitation.id, "declined")

        await self._until([invitation.id], declined, "the declined invitation")

    def _invitation_desk(self) -> InvitationAnswers:
        if self._answers is None:
            raise TemporarilyUnavailable(
                "invitations are not available", reason="invitation.unavailable"
            )
        return self._answers

    async def _joined(self, invitation: InvitationRow, user_id: str) -> None:
        async def joined(conn: psycopg.AsyncConnection[Any]) -> bool:
            return await self.invitations.joined(conn, invitation.id, invitation.org_id, user_id)

        await self._until([user_id, invitation.id], joined, "the accepted invitation")

    async def _until(self, ids: list[str], check: Check, what: str) -> Any:
        """`check`'s first truthy answer, re-read whenever one of `ids` is notified (and at
        least every RECHECK_S), waiting at most `wait_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        with self.arrivals.watch(*ids) as notice:
            while True:
                notice.clear()
                async with self.pool.connection() as conn:
                    found = await check(conn)
                if found:
                    return found
                left = deadline - loop.time()
                if left <= 0:
                    log.warning("registry.not_seen", ids=ids, waited_s=self.wait_s)
                    raise TemporarilyUnavailable(
                        f"{what} is not available yet; retry", reason="registry.pending"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(notice.wait(), min(left, RECHECK_S))
