"""Read-side SQL over the issuers the agent service knows (issuers_view, kept by the
agent-issuers reaction) and the cascades their deletions queue (issuer_cascades)."""

from __future__ import annotations

from typing import Any, LiteralString

import msgspec
import psycopg
from psycopg.rows import class_row

from authpi.eventstore.sqltext import render


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
