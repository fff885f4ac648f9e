"""Signup and organization SSO sign-in from the token service's side: the directory creates the
user (its UserRegistry and SsoDirectory, wired in by the platform host: in-process in the
all-in-one topology), and `register` / `sso_sign_in` answer once this service's own projections
(token-users, and token-organizations for a new membership) hold the result, so the portal can
sign the user in at once.

The wait is on observable state, bounded: token-users notifies `users_channel` with each user id
it applies, in the same commit (token-organizations does the same for a new membership's
member); `UserArrivals` (one LISTEN connection per process, a worker task) wakes the waiters of
that id, and each waiter re-reads the rows. The rows are read after the waiter is in place, so a
notice sent before that is never missed; a lost LISTEN connection only makes the waiter re-read
them each second until its deadline."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from authpi.contracts.directory import SsoDirectory, SsoIdentity, SsoSignIn, UserRegistry
from authpi.errors import TemporarilyUnavailable
from authpi.eventstore.sqltext import render
from authpi.observability import get_logger
from authpi.token.queries.people import People, UserRecord

log = get_logger("authpi.token.registry")

REGISTER_WAIT_S = 10.0  # the longest a signup waits for token-users to apply the new user
RECHECK_S = 1.0  # re-read the row at least this often while waiting (a safety net)


class UserArrivals:
    """Wakes whoever waits for a user id when token-users applies an event of that user."""

    def __init__(self, dsn: str, channel: str) -> None:
        self.dsn = dsn
        self._listen = render("LISTEN {channel}", channel=channel)
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def watch(self, user_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._waiters.setdefault(user_id, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(user_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[user_id]

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


class Registry:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        people: People,
        arrivals: UserArrivals,
        wait_s: float = REGISTER_WAIT_S,
    ) -> None:
        self.pool = pool
        self.people = people
        self.arrivals = arrivals
        self.wait_s = wait_s
        self._directory: UserRegistry | None = None
        self._sso: SsoDirectory | None = None

    def connect(self, directory: UserRegistry) -> None:
        """Wired by the platform host to the directory's UserRegistry."""
        self._directory = directory

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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        with self.arrivals.watch(user_id) as notice:
            while True:
                notice.clear()
                async with self.pool.connection() as conn:
                    record = await self.people.user(conn, user_id)
                    joined = member_of is None or await self.people.member(conn, user_id, member_of)
                if record is not None and joined:
                    return record
                left = deadline - loop.time()
                if left <= 0:
                    log.warning("registry.user_not_seen", user_id=user_id, waited_s=self.wait_s)
                    raise TemporarilyUnavailable(
                        "the new user is not available yet; retry", reason="signup.pending"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(notice.wait(), min(left, RECHECK_S))
