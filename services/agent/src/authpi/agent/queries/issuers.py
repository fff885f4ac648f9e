"""Which issuers exist, for the agent service: its own issuers_view, kept by the agent-issuers
reaction from the directory's events (no call to the directory, no read of its tables), and the
cascades their deletions queue (issuer_cascades).

That view trails the directory by the relay and consumer latency (milliseconds). A client that
creates an issuer and at once an agent in it must not see a 404 for it, so an issuer id that is
not known yet but was minted moments ago (its UUIDv7 time, platform.md OP-1) is waited for, a
bounded while; any other unknown id is a 404 at once."""

from __future__ import annotations

import asyncio
from typing import Any, LiteralString

import msgspec
import psycopg
from psycopg.rows import class_row

from authpi.agent.domain.ids import require_known_id
from authpi.crypto.ids import minted_at
from authpi.errors import NotFound
from authpi.eventstore.sqltext import render
from authpi.web.runtime import Runtime

FRESH_MS = 30_000  # an id minted this recently may still be on its way here
WAIT_S = 5.0


class IssuerRow(msgspec.Struct, kw_only=True):
    id: str
    account_id: str
    status: str
    wallet_proof: str | None


_ISSUER = "SELECT id, account_id, status, wallet_proof FROM {schema}.issuers_view WHERE id = %s"

_LIVE_ISSUER_FOR_SHARE = """
SELECT 1 FROM {schema}.issuers_view
WHERE id = %s AND account_id = %s AND status <> 'deleted' FOR SHARE
"""

_PENDING_CASCADES = (
    "SELECT issuer_id, account_id FROM {schema}.issuer_cascades ORDER BY requested_at"
)

_CASCADE_DONE = """
WITH done AS (DELETE FROM {schema}.issuer_cascades WHERE issuer_id = %(issuer_id)s)
DELETE FROM {schema}.wallet_challenges WHERE issuer_id = %(issuer_id)s
"""


class IssuerQueries:
    def __init__(self, schema: str) -> None:
        self._issuer = render(_ISSUER, schema=schema)
        self.live_issuer_for_share: LiteralString = render(_LIVE_ISSUER_FOR_SHARE, schema=schema)
        self._pending_cascades = render(_PENDING_CASCADES, schema=schema)
        self._cascade_done = render(_CASCADE_DONE, schema=schema)

    async def issuer(self, conn: psycopg.AsyncConnection[Any], issuer_id: str) -> IssuerRow | None:
        cur = conn.cursor(row_factory=class_row(IssuerRow))
        await cur.execute(self._issuer, [issuer_id])
        return await cur.fetchone()

    async def pending_cascades(self, conn: psycopg.AsyncConnection[Any]) -> list[tuple[str, str]]:
        cur = await conn.execute(self._pending_cascades)
        return [(str(r[0]), str(r[1])) for r in await cur.fetchall()]

    async def cascade_done(self, conn: psycopg.AsyncConnection[Any], issuer_id: str) -> None:
        await conn.execute(self._cascade_done, {"issuer_id": issuer_id})


class IssuerGate:
    def __init__(self, rt: Runtime, queries: IssuerQueries) -> None:
        self.rt = rt
        self.queries = queries

    async def require(self, account_id: str, issuer_id: str) -> IssuerRow:
        """The live issuer `issuer_id` of `account_id`, or 404."""
        require_known_id(issuer_id)
        row = await self._find(issuer_id)
        if row is None and self._fresh(issuer_id):
            row = await self._wait_for(issuer_id)
        if row is None or row.account_id != account_id or row.status == "deleted":
            raise NotFound("no such issuer", reason="issuer.not_found")
        return row

    def _fresh(self, issuer_id: str) -> bool:
        minted = minted_at(issuer_id, "i")
        now = self.rt.clock.now_ms()
        return minted is not None and now - FRESH_MS <= minted <= now + FRESH_MS

    async def _find(self, issuer_id: str) -> IssuerRow | None:
        async with self.rt.pool.connection() as conn:
            return await self.queries.issuer(conn, issuer_id)

    async def _wait_for(self, issuer_id: str) -> IssuerRow | None:
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + WAIT_S, 0.005
        while loop.time() < deadline:
            await asyncio.sleep(delay)
            row = await self._find(issuer_id)
            if row is not None:
                return row
            delay = min(delay * 2, 0.2)
        return None
