"""Which accounts exist, for the `{account_id}` path check (`edge.account_path`)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from authpi.contracts.base import Envelope, Event
from authpi.contracts.directory import AccountCreated
from authpi.gateway.caches.arrivals import Arrivals
from authpi.gateway.reactions.directory import CONSUMER
from authpi.messaging.follower import Feed, FollowedCache

MISS_WAIT_S = 2.0  # as for API keys (api_keys.MISS_WAIT_S)
MAX_WAITING = 256


class AccountLookup(FollowedCache):
    """Whether an account exists, asked only when a credential names an account other than its
    own: from the gateway's own accounts_view (fed by its `gateway-directory` consumer; never
    the directory's tables). An account created a moment ago may not be there yet: its id is
    then awaited, bounded, from this process' ordered consumer on `account.created`, which also
    remembers every account created since it started (accounts are never deleted)."""

    def __init__(
        self,
        feed: Feed,
        *,
        consumer: str = CONSUMER,
        miss_wait: float = MISS_WAIT_S,
    ) -> None:
        self._pool = feed.pool
        self._known: set[str] = set()
        self._miss_wait = miss_wait
        self._arrivals = Arrivals("acc", limit=MAX_WAITING)
        self._exists = sql.SQL("SELECT 1 FROM {}.accounts_view WHERE id = %s").format(
            sql.Identifier(feed.schema)
        )
        super().__init__(feed, consumer=consumer, event_types="account.created")

    async def exists(self, account_id: str) -> bool:
        if not account_id.isprintable() or len(account_id) > 64:
            return False  # never a stored id; PostgreSQL refuses NUL in text anyway
        if account_id in self._known:
            return True
        async with self._pool.connection() as conn:
            cur = await conn.execute(self._exists, [account_id])
            found = await cur.fetchone() is not None
        if found:
            self._known.add(account_id)
            return True
        return await self._arrivals.wait(
            account_id, self._miss_wait, lambda: account_id in self._known
        )

    async def load(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Nothing to hold in memory: what the view held at the checkpoint is asked from it."""

    def receive(self, env: Envelope, event: Event) -> None:
        if isinstance(event, AccountCreated):
            self._known.add(event.id)
            self._arrivals.arrived(event.id)
