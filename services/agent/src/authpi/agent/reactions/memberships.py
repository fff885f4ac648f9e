"""agent-memberships: the organization memberships of agents (platform.md 3.5), learnt from the
directory's organization events into agent_memberships_view, together with each organization's
status (organizations_seen), so that wallet resolution can answer with an agent's memberships
(platform.md 4.4, `expand=memberships`) without calling the directory.

Every event it takes is on the organization's stream. organizations_seen keeps the stream version
of the last one applied, and an event at or below it is stale (a replay, a redelivery) and changes
nothing: a removed membership never comes back. A deleted organization stays as a `deleted` row."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.contracts.directory import (
    MembershipSnapshot,
    OrganizationCreated,
    OrganizationDeleted,
    OrganizationGroupDeleted,
    OrganizationMembershipCreated,
    OrganizationMembershipDeleted,
    OrganizationMembershipUpdated,
    OrganizationReactivated,
    OrganizationSuspended,
    OrganizationUpdated,
)
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent


class MembershipsReaction:
    name = "agent-memberships"
    event_types = (
        "organization.created",
        "organization.updated",
        "organization.suspended",
        "organization.reactivated",
        "organization.deleted",
        "organization.group.deleted",
        "organization.membership.created",
        "organization.membership.updated",
        "organization.membership.deleted",
    )

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._org = render(
            "INSERT INTO {schema}.organizations_seen AS o (id, issuer_id, status, version)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
            " version = excluded.version WHERE o.version < excluded.version RETURNING 1",
            schema=schema,
        )
        # The version gate: moves the organization's version, or says the event is stale.
        self._newer = render(
            "UPDATE {schema}.organizations_seen SET version = %s WHERE id = %s AND version < %s"
            " RETURNING 1",
            schema=schema,
        )
        self._seen = render(
            "SELECT 1 FROM {schema}.organizations_seen WHERE id = %s", schema=schema
        )
        self._org_status = render(
            "UPDATE {schema}.organizations_seen SET status = %s WHERE id = %s", schema=schema
        )
        self._org_gone = render(
            "UPDATE {schema}.organizations_seen SET status = 'deleted' WHERE id = %s",
            schema=schema,
        )
        self._org_members_gone = render(
            "DELETE FROM {schema}.agent_memberships_view WHERE org_id = %s", schema=schema
        )
        self._group_gone = render(
            "UPDATE {schema}.agent_memberships_view SET groups = groups - %s WHERE org_id = %s",
            schema=schema,
        )
        self._member = render(
            "INSERT INTO {schema}.agent_memberships_view (org_id, agent_id, issuer_id, status,"
            " status_reason, status_by, scopes, groups, user_title, metadata, joined_at,"
            " updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s::jsonb,"
            " %s, %s) ON CONFLICT (org_id, agent_id) DO UPDATE SET status = excluded.status,"
            " status_reason = excluded.status_reason, status_by = excluded.status_by,"
            " scopes = excluded.scopes, groups = excluded.groups,"
            " user_title = excluded.user_title, metadata = excluded.metadata,"
            " updated_at = excluded.updated_at",
            schema=schema,
        )
        self._member_gone = render(
            "DELETE FROM {schema}.agent_memberships_view WHERE org_id = %s AND agent_id = %s",
            schema=schema,
        )
        self._reset = render(
            "TRUNCATE {schema}.agent_memberships_view, {schema}.organizations_seen", schema=schema
        )

    async def _is_newer(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> bool:
        version, org_id = stored.stream_version, stored.stream_id
        cur = await conn.execute(self._newer, [version, org_id, version])
        if await cur.fetchone() is not None:
            return True
        cur = await conn.execute(self._seen, [org_id])
        return await cur.fetchone() is None  # an organization never seen: nothing to compare

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        if isinstance(stored.event, OrganizationCreated):
            e = stored.event
            await conn.execute(self._org, [e.id, e.issuer_id, "active", stored.stream_version])
            return
        if not await self._is_newer(conn, stored):
            return
        match stored.event:
            case OrganizationUpdated(status=str()) as e:
                await conn.execute(self._org_status, [e.status, e.id])
            case OrganizationSuspended() | OrganizationReactivated() as e:
                await conn.execute(self._org_status, [e.status, e.id])
            case OrganizationDeleted() as e:
                await conn.execute(self._org_gone, [e.id])
                await conn.execute(self._org_members_gone, [e.id])
            case OrganizationGroupDeleted() as e:
                await conn.execute(self._group_gone, [e.id, e.org_id])
            case OrganizationMembershipCreated() as e if e.member_type == "agent":
                await conn.execute(self._member, _member_row(e, e.joined_at, None))
            case OrganizationMembershipUpdated() as e if e.member_type == "agent":
                await conn.execute(self._member, _member_row(e, 0, e.updated_at))
            case OrganizationMembershipDeleted() as e if e.member_type == "agent":
                await conn.execute(self._member_gone, [e.org_id, e.member_id])
            case _:
                return

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)


def _member_row(e: MembershipSnapshot, joined_at: int, updated_at: int | None) -> list[Any]:
    return [
        e.org_id, e.member_id, e.issuer_id, e.status, e.status_reason, e.status_by,
        jsonb.dumps(e.scopes), jsonb.dumps(e.groups), e.user_title, jsonb.dumps(e.metadata),
        joined_at, updated_at,
    ]  # fmt: skip
