"""Agents as organization members (platform.md 3.5, core-api.md 3.13). The directory knows agents
only from its own agents_view, kept by the directory-agents consumer from the agent service's
agent.* events: an add is refused (404) unless the agent is there, in the organization's account
and issuer, and not deleted. The view trails the agent service by the relay and consumer latency,
so an agent id that looks freshly minted but is not there yet is waited for, a bounded while.

When an agent is deleted, the consumer takes the agent's advisory lock and marks it deleted in
agents_view, then drops its memberships, each with an `organization.membership.deleted` (trigger
`system`, caused by the `agent.deleted`). Every append goes through the store's `execute` in a
transaction of its own, which loads the organization's stream before its first write (STYLE.md
6; a stream loaded after a write, as in the consumer's own transaction, could be published out of
version order). An add takes the same lock before it loads anything (an advisory lock gives the
transaction no id): an add that committed first is dropped by the deletion, one that waited for
the lock sees the agent deleted."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import psycopg

from authpi.contracts.agent import AgentDeleted
from authpi.contracts.base import SYSTEM, Meta
from authpi.crypto.ids import minted_at
from authpi.directory.domain import organization
from authpi.directory.domain.commands.organization import AddMember, DropDepartedMember, OrgRef
from authpi.directory.queries.agents import AgentQueries, AgentRow
from authpi.errors import NotFound
from authpi.eventstore.store import EventStore, StoredEvent, Tx
from authpi.web.runtime import Runtime

WAIT_S = 2.0  # how long an add waits for an agent the consumer has not brought yet
_LOCK = "SELECT pg_advisory_xact_lock(hashtext(%s))"


def freshly_minted(agent_id: str) -> bool:
    """Whether the id has the shape the agent service mints (`agt_` + a UUIDv7), so that it may
    be on its way here; anything else is unknown at once."""
    return minted_at(agent_id, "agt") is not None


def _belongs(row: AgentRow | None, ref: OrgRef) -> bool:
    return (
        row is not None
        and row.account_id == ref.account_id
        and row.issuer_id == ref.issuer_id
        and row.status != "deleted"
    )


def _unknown() -> NotFound:
    return NotFound("no such agent in this issuer", reason="membership.unknown_member")


class AgentMembers:
    def __init__(self, rt: Runtime, store: EventStore) -> None:
        self.rt = rt
        self.store = store
        self.queries = AgentQueries(store.schema)

    async def require_agent(self, ref: OrgRef, agent_id: str) -> None:
        """The agent exists in the organization's issuer and is not deleted, or 404."""
        row = await self._find(agent_id)
        if row is None and freshly_minted(agent_id):
            row = await self._wait_for(agent_id)
        if not _belongs(row, ref):
            raise _unknown()

    async def add(self, cmd: AddMember, meta: Meta) -> None:
        await self.require_agent(cmd.ref, cmd.member_id)
        cmd = msgspec.structs.replace(cmd, now=self.rt.clock.now_ms())

        async def agent_still_there(tx: Tx) -> None:
            await self.lock(tx.conn, cmd.member_id)
            if not _belongs(await self.queries.agent(tx.conn, cmd.member_id), cmd.ref):
                raise _unknown()  # deleted meanwhile

        await self.store.execute(
            cmd.ref.org_id, organization, cmd, meta,
            prepare=agent_still_there,
        )  # fmt: skip

    async def lock(self, conn: psycopg.AsyncConnection[Any], agent_id: str) -> None:
        """The agent's lock, held until `conn`'s transaction ends."""
        await conn.execute(_LOCK, [f"{self.store.schema}.agent-members:{agent_id}"])

    async def drop_memberships(self, stored: StoredEvent, agent: AgentDeleted) -> None:
        """Called by the consumer once its transaction holds the agent's lock and has marked it
        deleted: an add still in flight has committed (and is seen here), a later one will see
        the agent deleted. Each organization in a transaction of its own; repeatable: a
        membership already gone decides nothing."""
        async with self.rt.pool.connection() as conn:
            org_ids = await self.queries.organizations_of(conn, agent.id)
        for org_id in org_ids:
            cmd = DropDepartedMember(org_id=org_id, member_id=agent.id, now=self.rt.clock.now_ms())
            meta = self._caused_by(stored, agent, org_id)
            await self.store.execute(org_id, organization, cmd, meta)

    def _caused_by(self, stored: StoredEvent, agent: AgentDeleted, org_id: str) -> Meta:
        return Meta(
            account_id=stored.meta.account_id, issuer_id=agent.issuer_id, actor=SYSTEM,
            trigger="system", correlation_id=stored.meta.correlation_id or stored.event_id,
            causation_id=stored.event_id, region=self.rt.settings.region,
            subject={"org_id": org_id, "member_id": agent.id, "member_type": "agent"},
        )  # fmt: skip

    async def _find(self, agent_id: str) -> AgentRow | None:
        async with self.rt.pool.connection() as conn:
            return await self.queries.agent(conn, agent_id)

    async def _wait_for(self, agent_id: str) -> AgentRow | None:
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + WAIT_S, 0.01
        while loop.time() < deadline:
            await asyncio.sleep(delay)
            row = await self._find(agent_id)
            if row is not None:
                return row
            delay = min(delay * 2, 0.2)
        return None
