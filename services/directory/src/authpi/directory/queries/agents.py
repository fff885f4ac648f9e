"""Read-side SQL over agents_view (the directory's projection of the agent service's agents) and
the agent memberships in members_view: what agent memberships need to be decided."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
from psycopg.rows import class_row

from authpi.eventstore.sqltext import render


class AgentRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    issuer_id: str
    status: str  # active | suspended | blocked | deleted


class AgentQueries:
    def __init__(self, schema: str) -> None:
        select = "SELECT id, account_id, issuer_id, status FROM {schema}.agents_view WHERE id = %s"
        self._agent = render(select, schema=schema)
        # Held until the write commits: the directory-agents consumer marks the agent deleted
        # (and reads its memberships) only before or after, never in between.
        self._agent_for_share = render(select + " FOR SHARE", schema=schema)
        self._memberships = render(
            "SELECT org_id FROM {schema}.members_view WHERE member_id = %s"
            " AND member_type = 'agent' ORDER BY org_id",
            schema=schema,
        )

    async def agent(
        self, conn: psycopg.AsyncConnection[Any], agent_id: str, *, for_share: bool = False
    ) -> AgentRow | None:
        cur = conn.cursor(row_factory=class_row(AgentRow))
        await cur.execute(self._agent_for_share if for_share else self._agent, [agent_id])
        return await cur.fetchone()

    async def organizations_of(
        self, conn: psycopg.AsyncConnection[Any], agent_id: str
    ) -> list[str]:
        """The organizations the agent is a member of."""
        cur = await conn.execute(self._memberships, [agent_id])
        return [str(row[0]) for row in await cur.fetchall()]
