"""Each account's prepaid balance in memory, for the 402 gate of Core API writes (platform.md
5.6): every process loads the gateway's own account_balances_view (fed by `gateway-billing`)
with that consumer's checkpoint, then follows `credit-ledger.*` events. An account with no entry
yet has a balance of 0. A write waits for this cache like for the others (read-your-writes), so
the request after a top-up is never refused for the credit it just bought."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from authpi.contracts.base import Envelope, Event
from authpi.contracts.billing import LedgerEntryRecorded
from authpi.gateway.reactions.billing import BILLING_CONSUMER
from authpi.messaging.follower import Feed, FollowedCache


class AccountBalances(FollowedCache):
    def __init__(self, feed: Feed, *, consumer: str = BILLING_CONSUMER) -> None:
        self._balances: dict[str, tuple[int, int]] = {}  # account -> (balance, version)
        self._load_query = sql.SQL(
            "SELECT account_id, balance, version FROM {}.account_balances_view"
        ).format(sql.Identifier(feed.schema))
        super().__init__(feed, consumer=consumer, event_types="credit-ledger.>")

    def balance(self, account_id: str) -> int:
        found = self._balances.get(account_id)
        return 0 if found is None else found[0]

    async def load(self, conn: psycopg.AsyncConnection[Any]) -> None:
        cur = await conn.execute(self._load_query)
        self._balances = {row[0]: (int(row[1]), int(row[2])) for row in await cur.fetchall()}

    def receive(self, env: Envelope, event: Event) -> None:
        if not isinstance(event, LedgerEntryRecorded):
            return
        current = self._balances.get(env.meta.account_id)
        if current is not None and current[1] >= env.stream_version:
            return
        self._balances[env.meta.account_id] = (event.balance_after, env.stream_version)
