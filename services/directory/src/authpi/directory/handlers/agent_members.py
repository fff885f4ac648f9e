"""Agents as organization members (platform.md 3.5, core-api.md 3.13). The directory knows agents
only from its own agents_view, kept by the directory-agents consumer from the agent service's
agent.* events: an add is refused (404) unless the agent is there, in the organization's account
and issuer, and not deleted. The view trails the agent service by the relay and consumer latency,
so an agent id that looks freshly minted but is not there yet is waited for, a bounded while.

When an agent is deleted, the consumer drops its memberships in its own transaction, each with an
`organization.membership.deleted` (trigger `system`, caused by the `agent.deleted`). Both sides
take the agent's agents_view row before the organization stream (an add holds it FOR SHARE, the
consumer updates it), so an add racing the deletion either commits first, and is then dropped by
it, or sees the agent deleted."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import msgspec
import psycopg

from authpi.contracts.agent import AgentDeleted
from authpi.contracts.base import SYSTEM, Meta
from authpi.directory.domain import organization
from authpi.directory.domain.organization_commands import (
    AddMember,
    DropDepartedMember,
    OrganizationCommand,
    OrgRef,
)
from authpi.directory.projections.organizations import OrganizationsView
from authpi.directory.queries_agents import AgentQueries, AgentRow
from authpi.errors import Conflict, NotFound, VersionConflict
from authpi.eventstore.store import EventStore, StoredEvent, fold
from authpi.web.runtime import Runtime

WAIT_S = 2.0  # how long an add waits for an agent the consumer has not brought yet
ATTEMPTS = 3  # appends retried after a concurrent write to the same organization stream
_EVENTS_KEY = "events_stream_id_stream_version_key"
_AGENT_ID = re.compile(r"agt_([0-9a-f]{32})")


def freshly_minted(agent_id: str) -> bool:
    """Whether the id has the shape the agent service mints (`agt_` + a UUIDv7 in hex), so that
    it may be on its way here; anything else is unknown at once."""
    match = _AGENT_ID.fullmatch(agent_id)
    return match is not None and (int(match[1], 16) >> 76) & 0xF == 7


def _belongs(row: AgentRow | None, ref: OrgRef) -> bool:
    return (
        row is not None
        and row.account_id == ref.account_id
        and row.issuer_id == ref.issuer_id
        and row.status != "deleted"
    )


def _unknown() -> NotFound:
    return NotFound("no such agent in this issuer", reason="membership.unknown_member")


def _conflicted(exc: Exception) -> bool:
    if isinstance(exc, VersionConflict):
        return True
    # In pipeline mode (the consumer's batches) the violation surfaces when results are read.
    return (
        isinstance(exc, psycopg.errors.UniqueViolation) and exc.diag.constraint_name == _EVENTS_KEY
    )


class AgentMembers:
    def __init__(self, rt: Runtime, store: EventStore, view: OrganizationsView) -> None:
        self.rt = rt
        self.store = store
        self.view = view
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
        for _ in range(ATTEMPTS):
            try:
                async with self.rt.pool.connection() as conn, conn.transaction():
                    row = await self.queries.agent(conn, cmd.member_id, for_share=True)
                    if not _belongs(row, cmd.ref):
                        raise _unknown()  # deleted meanwhile
                    await self._execute(conn, cmd.ref.org_id, cmd, meta)
                return
            except (VersionConflict, psycopg.errors.DeadlockDetected):
                # A deadlock is possible against a consumer batch that dropped another agent of
                # this organization before taking this agent's row; PostgreSQL breaks it.
                continue
        raise Conflict(
            "the resource was changed concurrently; retry", reason="eventstore.version_conflict"
        )

    async def drop_memberships(
        self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent, agent: AgentDeleted
    ) -> None:
        """In the consumer's transaction, once agents_view holds the agent as deleted: remove
        each of its memberships. Repeatable: a membership already gone decides nothing."""
        for org_id in await self.queries.organizations_of(conn, agent.id):
            cmd = DropDepartedMember(org_id=org_id, member_id=agent.id, now=self.rt.clock.now_ms())
            meta = self._caused_by(stored, agent, org_id)
            for attempt in range(ATTEMPTS):
                try:
                    # A savepoint: a concurrent write to this organization retries it alone.
                    async with conn.transaction():
                        await self._execute(conn, org_id, cmd, meta)
                    break
                except Exception as exc:
                    if not _conflicted(exc) or attempt == ATTEMPTS - 1:
                        raise

    def _caused_by(self, stored: StoredEvent, agent: AgentDeleted, org_id: str) -> Meta:
        return Meta(
            account_id=stored.meta.account_id, issuer_id=agent.issuer_id, actor=SYSTEM,
            trigger="system", correlation_id=stored.meta.correlation_id or stored.event_id,
            causation_id=stored.event_id, region=self.rt.settings.region,
            subject={"org_id": org_id, "member_id": agent.id, "member_type": "agent"},
        )  # fmt: skip

    async def _execute(
        self, conn: psycopg.AsyncConnection[Any], org_id: str, cmd: OrganizationCommand,
        meta: Meta,
    ) -> None:  # fmt: skip
        """Load, decide, append and project one command on the organization's stream, in the
        caller's transaction."""
        history = await self.store.load(conn, org_id)
        events = organization.decide(cmd, fold(organization, history))
        for stored in await self.store.append(conn, org_id, len(history), events, meta):
            await self.view.apply(conn, stored)

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
