"""Agents as organization members (platform.md 3.5, 3.6; core-api.md 3.13) with the official SDK:
agents made by the agent service join organizations through the directory's own projection of
them, are listed and read like users, are refused when unknown, foreign or deleted, and lose
their memberships when they are deleted (one `organization.membership.deleted` each, caused by
the `agent.deleted`, appended once however often that event arrives)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import msgspec
import psycopg
import pytest
from authpi_admin.errors import ConflictError, NotFoundError
from psycopg import sql

from authpi.contracts.agent import AgentDeleted
from authpi.contracts.base import SYSTEM, Meta
from authpi.contracts.catalogue import decode_event
from authpi.directory.domain import organization
from authpi.directory.domain.commands.organization import OrgRef, UpdateMember
from authpi.directory.projections.organizations import OrganizationsView
from authpi.directory.reactions.agents import AgentsReaction
from authpi.eventstore.replay import replay
from authpi.eventstore.store import StoredEvent, fold
from authpi.testing.plugin import eventually

# Public APIs only (tests that read the database or reach another account stay all-in-one):
# also run against the distributed run (platform testing plugin).
pytestmark = pytest.mark.sdk


@pytest.fixture
async def org(admin, issuer):
    return await admin.issuer(issuer).organizations.create(
        {"name": "Agents team", "default_member_scopes": ["member"],
         "scopes": ["member", "tickets:triage"]}
    )  # fmt: skip


async def new_agent(admin, issuer: str, name: str = "triage") -> str:
    agent = await admin.issuer(issuer).agents.create(
        {"name": name, "model": "claude-sonnet-4-5", "provider": "anthropic"}
    )
    return agent.id


def members_url(platform, issuer: str, org_id: str) -> str:
    return (f"{platform.api_url}/v1/accounts/{platform.account_id}/issuers/{issuer}"
            f"/organizations/{org_id}/members")  # fmt: skip


def http(platform) -> httpx.AsyncClient:
    return httpx.AsyncClient(auth=(platform.api_key_id, platform.api_key_secret), timeout=30)


async def org_events(platform, pool, kit, org_id: str) -> list[dict[str, Any]]:
    query = sql.SQL(
        "SELECT type, data, meta FROM {}.events WHERE stream_id = %s ORDER BY position"
    ).format(kit.schema_of(platform))
    async with pool.connection() as conn:
        cur = await conn.execute(query, [org_id])
        return [{"type": t, "data": d, "meta": m} for t, d, m in await cur.fetchall()]


async def agent_deleted_event(platform, pool, kit, agent_id: str) -> StoredEvent:
    """The agent service's `agent.deleted` of the agent, as its consumers received it."""
    query = sql.SQL(
        "SELECT position, tx_id::text, event_id::text, stream_version, data::text, meta::text,"
        " (extract(epoch from recorded_at) * 1000)::bigint FROM {}.events"
        " WHERE stream_id = %s AND type = 'agent.deleted'"
    ).format(kit.schema_of(platform, "agent"))
    async with pool.connection() as conn:
        cur = await conn.execute(query, [agent_id])
        position, tx_id, event_id, version, data, meta, recorded_at = await cur.fetchone()
    return StoredEvent(
        position=position, tx_id=int(tx_id), event_id=event_id, stream_id=agent_id,
        stream_version=version, type="agent.deleted", schema_version=1,
        event=decode_event(data), meta=msgspec.json.decode(meta, type=Meta),
        recorded_at=recorded_at,
    )  # fmt: skip


def agents_reaction(platform):
    return next(
        projection
        for parts in platform.handle.parts
        for projection in parts.projections
        if projection.name == "directory-agents"
    )


async def test_agent_created_a_moment_ago_joins_and_is_listed_and_read(
    platform, pool, kit, admin, issuer, org
):
    members = admin.issuer(issuer).organization(org.id).members
    agent_id = await new_agent(admin, issuer)
    added = await members.create(
        {"member_type": "agent", "member_id": agent_id, "scopes": ["tickets:triage"],
         "user_title": "Triage bot", "metadata": {"team": "support"}}
    )  # fmt: skip
    assert (added.org_id, added.member_id, added.member_type, added.issuer_id) == (
        org.id, agent_id, "agent", issuer,
    )  # fmt: skip
    assert (added.status, added.scopes, added.groups, added.user_title) == (
        "active", ["tickets:triage"], [], "Triage bot",
    )  # fmt: skip
    assert added.metadata.model_dump() == {"team": "support"}
    assert added.joined_at > 0 and added._etag

    listed = [m async for m in members.list_all()]
    assert [(m.member_id, m.member_type) for m in listed] == [(agent_id, "agent")]
    async with http(platform) as client:
        got = await client.get(f"{members_url(platform, issuer, org.id)}/{agent_id}")
    assert got.status_code == 200
    assert got.json()["data"] == {
        "org_id": org.id, "member_id": agent_id, "member_type": "agent", "issuer_id": issuer,
        "status": "active", "status_reason": None, "status_by": None,
        "scopes": ["tickets:triage"], "groups": [], "user_title": "Triage bot",
        "metadata": {"team": "support"}, "joined_at": added.joined_at, "updated_at": None,
    }  # fmt: skip
    assert (await admin.issuer(issuer).organizations.get(org.id)).stats == {"n_members": 1}

    created = (await org_events(platform, pool, kit, org.id))[-1]
    assert created["type"] == "organization.membership.created"
    assert created["data"]["member_type"] == "agent"
    assert created["meta"]["subject"] == {
        "org_id": org.id,
        "member_id": agent_id,
        "member_type": "agent",
    }


@pytest.mark.sdk(quick=True)
async def test_member_type_of_an_agent_id_is_inferred(admin, issuer, org):
    members = admin.issuer(issuer).organization(org.id).members
    agent_id = await new_agent(admin, issuer)
    added = await members.create({"member_id": agent_id})
    assert (added.member_type, added.scopes) == ("agent", ["member"])
    with pytest.raises(ConflictError):
        await members.create({"member_id": agent_id, "member_type": "agent"})


async def test_agent_membership_update_and_removal_carry_the_member_type(
    platform, pool, kit, admin, issuer, org
):
    members = admin.issuer(issuer).organization(org.id).members
    agent_id = await new_agent(admin, issuer)
    await members.create({"member_id": agent_id})
    updated = await members.update(agent_id, {"status": "suspended", "status_reason": "paused"})
    assert (updated.member_type, updated.status) == ("agent", "suspended")
    assert [m.member_id async for m in members.list_all(status="suspended")] == [agent_id]
    await members.delete(agent_id)
    assert [m async for m in members.list_all()] == []
    events = (await org_events(platform, pool, kit, org.id))[-2:]
    assert [e["type"] for e in events] == [
        "organization.membership.updated", "organization.membership.deleted"
    ]  # fmt: skip
    for event in events:
        assert event["data"]["member_type"] == "agent"
        assert event["meta"]["subject"]["member_type"] == "agent"


async def test_unknown_foreign_and_deleted_agents_are_refused_without_an_event(
    platform, pool, kit, admin, issuer, org
):
    members = admin.issuer(issuer).organization(org.id).members
    foreign = await new_agent(admin, await kit.new_issuer(admin), "elsewhere")
    gone = await new_agent(admin, issuer, "gone")
    await admin.issuer(issuer).agents.delete(gone)
    # Both in the directory's view: refused for what they are, not for lag.
    await eventually(lambda: _in_view(platform, pool, kit, foreign, "active"), timeout=30)
    await eventually(lambda: _in_view(platform, pool, kit, gone, "deleted"), timeout=30)
    never_minted = f"agt_{uuid.uuid4().hex}"  # a UUIDv4: no agent service mints it
    looks_fresh = f"agt_{uuid.UUID(int=(uuid.uuid4().int & ~(0xF << 76)) | (7 << 76)).hex}"
    before = await kit.count_events(platform, pool)
    for member_id in (foreign, gone, never_minted, looks_fresh, "agt_" + "0" * 32):
        with pytest.raises(NotFoundError):
            await members.create({"member_id": member_id, "member_type": "agent"})
    assert await kit.count_events(platform, pool) == before


async def _in_view(platform, pool, kit, agent_id: str, status: str) -> bool:
    query = sql.SQL("SELECT status FROM {}.agents_view WHERE id = %s").format(
        kit.schema_of(platform)
    )
    async with pool.connection() as conn:
        row = await (await conn.execute(query, [agent_id])).fetchone()
    return row is not None and row[0] == status


async def test_bad_agent_member_input_is_a_4xx_without_an_event(
    platform, pool, kit, admin, issuer, org
):
    agent_id = await new_agent(admin, issuer)
    user = await admin.issuer(issuer).users.create(
        {"username_type": "email", "username": f"a-{uuid.uuid4().hex[:10]}@example.com"}
    )
    url = members_url(platform, issuer, org.id)
    # Wrong types and invalid values are 422 with `fields` (core-api.md 2.1, libs/web body.py).
    bodies = [
        ({"member_id": agent_id, "member_type": "robot"}, 422),
        ({"member_id": agent_id, "member_type": "user"}, 404),
        ({"member_id": user.id, "member_type": "agent"}, 404),
        ({"member_id": "agt_ bad", "member_type": "agent"}, 422),
        ({"member_id": "agt_\u0000", "member_type": "agent"}, 422),
        ({"member_id": agent_id, "scopes": "tickets:triage"}, 422),
        ({"member_id": agent_id, "scopes": ["not-in-the-org"]}, 422),
        ({"member_id": agent_id, "groups": ["grp_missing"]}, 422),
        ({"member_id": agent_id, "metadata": {"bad key!": 1}}, 422),
        ({"member_type": "agent"}, 422),
    ]
    before = await kit.count_events(platform, pool)
    async with http(platform) as client:
        for body, status in bodies:
            response = await client.post(url, json=body)
            assert response.status_code == status, (body, response.text)
        unknown_member = await client.get(f"{url}/agt_{'0' * 32}")
        assert unknown_member.status_code == 404
    assert await kit.count_events(platform, pool) == before


async def test_deleting_an_agent_removes_its_memberships(platform, pool, kit, admin, issuer, org):
    other = await admin.issuer(issuer).organizations.create({"name": "Second team"})
    agent_id = await new_agent(admin, issuer)
    keeper = await new_agent(admin, issuer, "keeper")
    for org_id in (org.id, other.id):
        await admin.issuer(issuer).organization(org_id).members.create({"member_id": agent_id})
    await admin.issuer(issuer).organization(org.id).members.create({"member_id": keeper})

    await admin.issuer(issuer).agents.delete(agent_id)

    async def gone() -> bool:
        for org_id in (org.id, other.id):
            members = admin.issuer(issuer).organization(org_id).members
            if agent_id in [m.member_id async for m in members.list_all()]:
                return False
        return True

    await eventually(gone, timeout=10)
    remaining = admin.issuer(issuer).organization(org.id).members
    assert [m.member_id async for m in remaining.list_all()] == [keeper]
    with pytest.raises(NotFoundError):
        await remaining.update(agent_id, {"user_title": "x"})

    cause = await agent_deleted_event(platform, pool, kit, agent_id)
    for org_id in (org.id, other.id):
        dropped = [
            e for e in await org_events(platform, pool, kit, org_id)
            if e["type"] == "organization.membership.deleted"
        ]  # fmt: skip
        assert len(dropped) == 1
        (event,) = dropped
        assert event["data"]["member_id"] == agent_id and event["data"]["member_type"] == "agent"
        meta = msgspec.convert(event["meta"], Meta)
        assert (meta.trigger, meta.actor, meta.causation_id) == ("system", SYSTEM, cause.event_id)
        assert meta.subject == {"org_id": org_id, "member_id": agent_id, "member_type": "agent"}
        assert (meta.account_id, meta.issuer_id) == (platform.account_id, issuer)


async def test_redelivered_agent_deleted_appends_nothing(platform, pool, kit, admin, issuer, org):
    agent_id = await new_agent(admin, issuer)
    members = admin.issuer(issuer).organization(org.id).members
    await members.create({"member_id": agent_id})
    await admin.issuer(issuer).agents.delete(agent_id)
    await eventually(lambda: _dropped(platform, pool, kit, org.id, agent_id), timeout=10)
    cause = await agent_deleted_event(platform, pool, kit, agent_id)
    before = await kit.count_events(platform, pool)

    reaction = agents_reaction(platform)
    for _ in range(2):
        async with pool.connection() as conn, conn.pipeline(), conn.transaction():
            await reaction.apply(conn, cause)

    assert await kit.count_events(platform, pool) == before
    assert await _dropped(platform, pool, kit, org.id, agent_id)


async def _dropped(platform, pool, kit, org_id: str, agent_id: str) -> bool:
    events = await org_events(platform, pool, kit, org_id)
    return any(
        e["type"] == "organization.membership.deleted" and e["data"]["member_id"] == agent_id
        for e in events
    )


async def test_membership_drop_retries_after_a_concurrent_write_to_the_organization(
    platform, pool, kit, admin, issuer, org
):
    """The consumer's reaction meets an append to the same organization stream that commits
    while it waits: it retries that organization alone (a savepoint) inside its transaction."""
    members = admin.issuer(issuer).organization(org.id).members
    user = await admin.issuer(issuer).users.create(
        {"username_type": "email", "username": f"c-{uuid.uuid4().hex[:10]}@example.com"}
    )
    agent_id = await new_agent(admin, issuer)
    await members.create({"member_id": user.id})
    await members.create({"member_id": agent_id})
    # The agent's deletion as the consumer would receive it (the agent service is not asked).
    cause = StoredEvent(
        position=0, tx_id=0, event_id=str(uuid.uuid4()), stream_id=agent_id,
        stream_version=1000, type="agent.deleted", schema_version=1,
        event=AgentDeleted(id=agent_id, issuer_id=issuer, name="triage", deleted_at=1),
        meta=Meta(account_id=platform.account_id, issuer_id=issuer), recorded_at=1,
    )  # fmt: skip
    organizations = kit.part(platform, "organizations")
    ref = OrgRef(org_id=org.id, account_id=platform.account_id, issuer_id=issuer)
    # A connection of its own, not from the shared pool: a pooled connection may come back in
    # autocommit mode from another test, and then the append would not hold its lock.
    blocker = await psycopg.AsyncConnection.connect(platform.dsn)
    try:
        history = await organizations.store.load(blocker, org.id)  # opens its transaction
        cmd = UpdateMember(ref=ref, member_id=user.id, now=2, user_title="concurrent")
        events = organization.decide(cmd, fold(organization, history))
        meta = Meta(account_id=platform.account_id, issuer_id=issuer)
        for stored in await organizations.store.append(blocker, org.id, len(history), events, meta):
            await OrganizationsView(organizations.store.schema).apply(blocker, stored)

        async def react() -> None:
            async with pool.connection() as conn, conn.pipeline(), conn.transaction():
                await agents_reaction(platform).apply(conn, cause)

        task = asyncio.create_task(react())

        async def blocked_or_finished() -> bool:
            return task.done() or await _waits_behind(pool, blocker.info.backend_pid)

        await eventually(blocked_or_finished, timeout=30)
        if task.done():
            task.result()  # an error surfaces here with its own message
            raise AssertionError("the reaction did not wait for the concurrent append")
        await blocker.commit()
        await asyncio.wait_for(task, timeout=30)
    finally:
        await blocker.close()

    recorded = await org_events(platform, pool, kit, org.id)
    assert [e["type"] for e in recorded[-2:]] == [
        "organization.membership.updated", "organization.membership.deleted"
    ]  # fmt: skip
    assert recorded[-1]["data"]["member_id"] == agent_id
    assert recorded[-1]["meta"]["causation_id"] == cause.event_id
    assert [m.member_id async for m in members.list_all()] == [user.id]


async def _waits_behind(pool, pid: int) -> bool:
    """Some other backend waits for a lock held by `pid`."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [pid]
        )
        row = await cur.fetchone()
    return bool(row and row[0])


async def test_replay_rebuilds_the_agents_view_and_appends_nothing(
    platform, pool, kit, admin, issuer, org
):
    kept, gone = await new_agent(admin, issuer, "kept"), await new_agent(admin, issuer, "gone")
    await admin.issuer(issuer).agents.update(kept, {"status": "suspended"})
    for agent_id in (kept, gone):
        await admin.issuer(issuer).organization(org.id).members.create({"member_id": agent_id})
    await admin.issuer(issuer).agents.delete(gone)
    await eventually(lambda: _dropped(platform, pool, kit, org.id, gone), timeout=10)
    query = sql.SQL(
        "SELECT id, account_id, issuer_id, status, version FROM {}.agents_view"
        " WHERE issuer_id = %s ORDER BY id"
    ).format(kit.schema_of(platform))

    async def rows() -> list[tuple]:
        async with pool.connection() as conn:
            return await (await conn.execute(query, [issuer])).fetchall()

    await eventually(lambda: _has_rows(rows, [(kept, "suspended"), (gone, "deleted")]), timeout=10)
    before, events = await rows(), await kit.count_events(platform, pool)
    # A second instance under another name: the live consumer holds directory-agents' lock.
    rebuild = AgentsReaction(
        f"{platform.namespace}_directory", kit.part(platform, "organizations").agents
    )
    rebuild.name = "directory-agents-rebuild"
    await replay(platform.dsn, rebuild, {"agent": f"{platform.namespace}_agent"})
    assert await rows() == before
    assert await kit.count_events(platform, pool) == events


async def _has_rows(rows, expected: list[tuple[str, str]]) -> bool:
    return sorted((r[0], r[3]) for r in await rows()) == sorted(expected)
