"""Agents over real HTTP with the official SDK (platform.md 3.2, contract 4.13): CRUD, cursor
pagination and auto-pagination, filters, statuses with reason and author, the events the token
service builds its cache from, If-Match, scopes, and malformed input refused without a 500 and
without an event."""

from __future__ import annotations

import pytest
from authpi_admin.errors import (
    ForbiddenError,
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
)

from authpi.contracts.scopes import ALL_SCOPES

# Public APIs only (tests that read the database or reach another account stay all-in-one):
# also run against the distributed run (platform testing plugin).
pytestmark = pytest.mark.sdk


async def test_sdk_creates_gets_updates_and_deletes_an_agent(tenant, platform, pool, kit):
    agents = tenant.agents()
    created = await agents.create(
        {
            "name": "Support Triage Agent",
            "description": "triages tickets",
            "model": "claude-sonnet-4-5",
            "provider": "anthropic",
            "version": "2026-06",
            "scopes": ["tickets:read", "tickets:triage"],
            "metadata": {"team": "support"},
        }
    )
    assert created.id.startswith("agt_") and len(created.id) == 36
    assert created.issuer_id == tenant.issuer_id and created.status == "active"
    assert created.scopes == ["tickets:read", "tickets:triage"]
    assert created.created_at > 0 and created._etag == f'"{created.created_at}"'

    fetched = await tenant.issuer().agent(created.id).get()
    assert fetched == created

    updated = await agents.update(
        created.id,
        {"name": "Triage v2", "scopes": ["tickets:read"], "metadata": {"x": "1"}},
        if_match=created._etag,
    )
    assert updated.name == "Triage v2" and updated.scopes == ["tickets:read"]
    assert updated.metadata.model_dump() == {"team": "support", "x": "1"}  # shallow merge
    assert updated.updated_at > created.created_at

    await agents.delete(created.id)
    with pytest.raises(NotFoundError):
        await agents.get(created.id)
    with pytest.raises(NotFoundError):
        await agents.delete(created.id)
    types = [e["type"] for e in await kit.stored_events(platform, pool, created.id)]
    assert types == ["agent.created", "agent.updated", "agent.deleted"]


async def test_only_name_is_required_and_new_agents_are_active(tenant):
    agent = await tenant.agents().create({"name": "bot"})
    assert agent.status == "active" and agent.scopes == [] and agent.metadata.model_dump() == {}
    assert agent.model is None and agent.description is None


async def test_list_pages_newest_first_and_auto_paginates(tenant):
    issuer_id = await tenant.new_issuer()
    agents = tenant.agents(issuer_id=issuer_id)
    ids = [(await agents.create({"name": f"bot-{i}"})).id for i in range(5)]
    first = await agents.list(limit=2)
    assert [a.id for a in first.data] == ids[::-1][:2]
    assert first.has_more and first.next_cursor
    second = await agents.list(limit=2, cursor=first.next_cursor)
    assert [a.id for a in second.data] == ids[::-1][2:4]
    every = [a.id async for a in agents.list_all(limit=2)]
    assert every == ids[::-1]
    last = await agents.list(limit=5)
    assert not last.has_more and last.next_cursor is None


async def test_list_filters_by_status_model_provider_and_verifiers(tenant):
    issuer_id = await tenant.new_issuer()
    agents = tenant.agents(issuer_id=issuer_id)
    a = await agents.create({"name": "a", "model": "m1", "provider": "p1"})
    b = await agents.create({"name": "b", "model": "m2", "provider": "p1"})
    await agents.update(b.id, {"status": "suspended"})
    await tenant.issuer(issuer_id=issuer_id).agent(a.id).verifiers.create({"type": "secret"})

    async def ids(**filters: str) -> set[str]:
        return {x.id async for x in agents.list_all(**filters)}

    assert await ids(status="suspended") == {b.id}
    assert await ids(status="active") == {a.id}
    assert await ids(model="m2") == {b.id}
    assert await ids(provider="p1") == {a.id, b.id}
    assert await ids(has_verifiers="true") == {a.id}
    assert await ids(has_verifiers="false") == {b.id}
    async with tenant.http() as http:
        listed = (await http.get(tenant.agents_path(issuer_id))).json()["data"]
    by_id = {x["id"]: x for x in listed}
    assert by_id[a.id]["verifiers"] == ["secret"] and by_id[b.id]["verifiers"] == []


async def test_status_changes_are_agent_updated_with_reason_and_author(tenant, platform, pool, kit):
    agents = tenant.agents()
    agent = await agents.create({"name": "bot", "scopes": ["a"]})
    suspended = await agents.update(
        agent.id, {"status": "suspended", "status_reason": "abuse", "status_by": "ops@acme"}
    )
    assert suspended.status == "suspended" and suspended.status_reason == "abuse"
    assert suspended.status_at == suspended.updated_at
    blocked = await agents.update(agent.id, {"status": "blocked"})
    assert blocked.status == "blocked" and blocked.status_reason is None
    active = await agents.update(agent.id, {"status": "active", "status_reason": "cleared"})
    assert active.status == "active" and active.status_reason == "cleared"
    async with tenant.http() as http:
        body = (await http.get(f"{tenant.agents_path()}/{agent.id}")).json()["data"]
    assert body["status_by"] is None  # a new status does not inherit the previous author

    events = await kit.stored_events(platform, pool, agent.id)
    updates = [e for e in events if e["type"] == "agent.updated"]
    assert [u["data"]["changed"] for u in updates] == [
        ["status", "status_reason", "status_by"],
        ["status", "status_reason", "status_by"],
        ["status", "status_reason"],
    ]
    assert updates[0]["data"]["status"] == "suspended"
    assert updates[0]["data"]["scopes"] == ["a"] and updates[0]["data"]["status_by"] == "ops@acme"


async def test_a_patch_that_changes_nothing_appends_nothing(tenant, platform, pool, kit):
    agents = tenant.agents()
    agent = await agents.create({"name": "bot", "scopes": ["a"]})
    same = await agents.update(agent.id, {"name": "bot", "scopes": ["a"], "status": "active"})
    assert same.updated_at is None
    assert [e["type"] for e in await kit.stored_events(platform, pool, agent.id)] == [
        "agent.created"
    ]


async def test_events_carry_what_the_token_cache_needs(tenant, platform, pool, kit):
    agent = await tenant.agents().create({"name": "bot", "scopes": ["x:read"], "model": "m"})
    await tenant.agents().update(agent.id, {"scopes": ["x:read", "x:write"]})
    created, updated = await kit.stored_events(platform, pool, agent.id)
    assert created["data"]["id"] == agent.id and created["data"]["issuer_id"] == tenant.issuer_id
    assert created["data"]["status"] == "active" and created["data"]["scopes"] == ["x:read"]
    assert created["meta"]["account_id"] == tenant.account_id
    assert created["meta"]["subject"]["agent_id"] == agent.id
    assert updated["data"]["changed"] == ["scopes"]
    assert updated["data"]["scopes"] == ["x:read", "x:write"] and updated["data"]["model"] == "m"


async def test_a_stale_if_match_is_412_and_changes_nothing(tenant):
    agents = tenant.agents()
    agent = await agents.create({"name": "bot"})
    await agents.update(agent.id, {"name": "moved"})
    with pytest.raises(PreconditionFailedError):
        await agents.update(agent.id, {"name": "late"}, if_match=agent._etag)
    with pytest.raises(PreconditionFailedError):
        await agents.delete(agent.id, if_match=agent._etag)
    assert (await agents.get(agent.id)).name == "moved"


@pytest.mark.sdk(quick=True)
async def test_scopes_gate_every_route(tenant):
    agent = await tenant.agents().create({"name": "bot"})
    nothing = await tenant.key_with([s for s in ALL_SCOPES if not s.startswith("issuers.agents")])
    reader = await tenant.key_with(["issuers.agents:read"])
    writer = await tenant.key_with(["issuers.agents:write"])
    with pytest.raises(ForbiddenError):
        await tenant.agents(nothing).list()
    with pytest.raises(ForbiddenError):
        await tenant.agents(nothing).get(agent.id)
    assert (await tenant.agents(reader).get(agent.id)).id == agent.id
    with pytest.raises(ForbiddenError):
        await tenant.agents(reader).create({"name": "x"})
    with pytest.raises(ForbiddenError):
        await tenant.agents(reader).update(agent.id, {"name": "x"})
    assert (await tenant.agents(writer).update(agent.id, {"name": "w"})).name == "w"
    with pytest.raises(ForbiddenError):
        await tenant.agents(writer).delete(agent.id)
    # A secret verifier hands out a credential that mints tokens: `manage` (core-api.md 5.2).
    with pytest.raises(ForbiddenError):
        await tenant.issuer(writer).agent(agent.id).verifiers.create({"type": "secret"})
    wallet = {"type": "wallet", "credential": {"network": "eip155:1", "address": "0x" + "1" * 40}}
    assert (await tenant.issuer(writer).agent(agent.id).verifiers.create(wallet)).type == "wallet"
    deleter = await tenant.key_with(["issuers.agents:delete"])
    await tenant.agents(deleter).delete(agent.id)


BAD_CREATES = [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": "bot", "scopes": [f"s{i}" for i in range(257)]}, "scopes"),
    ({"name": "bot", "scopes": ["has space"]}, "scopes.0"),
    ({"name": "bot", "scopes": ["ok", "ünïcödé"]}, "scopes.1"),
    ({"name": "bot", "scopes": ["line\n"]}, "scopes.0"),
    ({"name": "bot", "scopes": [""]}, "scopes.0"),
    ({"name": "bot", "scopes": "a b"}, "scopes"),
    ({"name": "nul\u0000byte"}, "name"),
    ({"name": "bot", "metadata": {"bad key": 1}}, "metadata"),
    ({"name": "bot", "metadata": {f"k{i}": i for i in range(51)}}, "metadata"),
    ({"name": "bot", "model": "m" * 201}, "model"),
]


@pytest.mark.parametrize(("body", "field"), BAD_CREATES)
async def test_malformed_creates_are_refused_without_an_event(
    tenant, platform, pool, kit, body, field
):
    before = await kit.count_events(platform, pool)
    async with tenant.http() as http:
        response = await http.post(tenant.agents_path(), json=body)
    assert response.status_code in (400, 422), response.text
    assert response.json()["fields"][0]["field"] == field
    assert await kit.count_events(platform, pool) == before


async def test_unicode_names_are_kept_and_lone_surrogates_refused(tenant, platform, pool, kit):
    agent = await tenant.agents().create({"name": "助手 🤖 ß", "description": "ünïcödé"})
    assert (await tenant.agents().get(agent.id)).name == "助手 🤖 ß"
    before = await kit.count_events(platform, pool)
    async with tenant.http() as http:
        raw = b'{"name": "bad \\ud800 surrogate"}'
        response = await http.post(
            tenant.agents_path(), content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code in (400, 422)
        response = await http.patch(
            f"{tenant.agents_path()}/{agent.id}",
            content=b'{"status": "gone"}',
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422
    assert await kit.count_events(platform, pool) == before


@pytest.mark.parametrize(
    "query",
    [
        {"status": "deleted"},
        {"has_verifiers": "yes"},
        {"limit": "0"},
        {"limit": "101"},
        {"cursor": "not-a-cursor"},
        {"expand": "verifiers"},
        {"wallet": "eip155:8453"},
        {"model": "nul\u0000"},
    ],
)
async def test_malformed_list_queries_are_400s(tenant, query):
    async with tenant.http() as http:
        response = await http.get(tenant.agents_path(), params=query)
    assert response.status_code in (400, 422), response.text
    assert response.json()["error"] == "invalid_request"


async def test_unstorable_path_ids_are_404_not_500(tenant):
    async with tenant.http() as http:
        for agent_id in ("agt_%00x", "agt_" + "x" * 300, "%F0%9F%A4%96"):
            response = await http.get(f"{tenant.agents_path()}/{agent_id}")
            assert response.status_code == 404, response.text
            response = await http.patch(f"{tenant.agents_path()}/{agent_id}", json={"name": "x"})
            assert response.status_code == 404, response.text


async def test_validation_error_class_reaches_the_sdk(tenant):
    with pytest.raises(ValidationError):
        await tenant.agents().create({"name": "bot", "scopes": ["a b"]})
