"""directory-agents: the agents the directory knows, learnt from the agent service's agent.*
events into its own agents_view (it never reads the agent service's tables), so that agents can
be organization members (platform.md 3.5). On `agent.deleted` the agent's memberships are dropped
(platform.md 3.6: "verifiers and memberships removed"): under the agent's lock, marked deleted,
then each membership removed through the store in a transaction of its own, which loads the
organization's stream before it writes (handlers.agent_members)."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.contracts.agent import AgentCreated, AgentDeleted, AgentUpdated
from authpi.directory.handlers.agent_members import AgentMembers
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent


class AgentsReaction:
    name = "directory-agents"
    event_types = ("agent.created", "agent.updated", "agent.deleted")

    def __init__(self, schema: str, members: AgentMembers) -> None:
        self.schema = schema
        self.members = members
        insert = (
            "INSERT INTO {schema}.agents_view (id, account_id, issuer_id, status, version,"
            " updated_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET"
            " status = excluded.status, version = excluded.version,"
            " updated_at = excluded.updated_at"
        )
        # Only a newer event moves a live agent; a deleted one stays deleted. Either way the row
        # is locked (ON CONFLICT DO UPDATE locks it even when the WHERE is false).
        self._upsert = render(
            insert + " WHERE {schema}.agents_view.version < excluded.version"
            " AND {schema}.agents_view.status <> 'deleted'",
            schema=schema,
        )
        self._deleted = render(insert, schema=schema)
        self._reset = render("TRUNCATE {schema}.agents_view", schema=schema)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case AgentCreated() | AgentUpdated() as e:
                await conn.execute(self._upsert, self._row(stored, e.id, e.issuer_id, e.status))
            case AgentDeleted() as e:
                await self.members.lock(conn, e.id)
                await conn.execute(self._deleted, self._row(stored, e.id, e.issuer_id, "deleted"))
                await self.members.drop_memberships(stored, e)
            case _:
                return

    def _row(self, stored: StoredEvent, agent_id: str, issuer_id: str, status: str) -> list[Any]:
        account_id = stored.meta.account_id
        return [agent_id, account_id, issuer_id, status, stored.stream_version, stored.recorded_at]

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)
