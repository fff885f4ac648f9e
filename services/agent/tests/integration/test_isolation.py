"""Tenant isolation of agents: another issuer's agent named under this issuer is a 404 on every
route, another account's paths are refused (403) and its ids name nothing here (404); deleting an
issuer deletes its agents (core-api.md 3.7), each with `agent.deleted`, and frees their wallets."""

from __future__ import annotations

import pytest
from authpi_admin import AuthPIAdmin
from authpi_admin.errors import ForbiddenError, NotFoundError

from authpi.testing.plugin import eventually
from services.agent.tests.factories import BASE

# Public APIs only (tests that read the database or reach another account stay all-in-one):
# also run against the distributed run (platform testing plugin).
pytestmark = pytest.mark.sdk

WALLET = {"type": "wallet", "credential": {"address": f"eip155:8453:{BASE}"}}


def calls(issuer, agent_id: str, verifier_id: str):
    agents, scope = issuer.agents, issuer.agent(agent_id)
    return [
        agents.get(agent_id),
        agents.update(agent_id, {"name": "x"}),
        agents.delete(agent_id),
        scope.get(),
        scope.verifiers.list(),
        scope.verifiers.create({"type": "secret"}),
        scope.verifiers.create(WALLET),
        scope.verifiers.delete(verifier_id),
    ]


async def test_another_issuers_agent_is_404_everywhere(tenant, platform, pool, kit):
    other_issuer = await tenant.new_issuer()
    theirs = await tenant.agents(issuer_id=other_issuer).create({"name": "theirs"})
    verifier = (
        await tenant.issuer(issuer_id=other_issuer)
        .agent(theirs.id)
        .verifiers.create({"type": "secret"})
    )
    before = await kit.count_events(platform, pool)
    for call in calls(tenant.issuer(), theirs.id, verifier.id):
        with pytest.raises(NotFoundError):
            await call
    async with tenant.http() as http:
        path = f"{tenant.agents_path()}/{theirs.id}/verifiers/challenge"
        response = await http.post(path, json={"network": "eip155:1"})
        assert response.status_code == 404
    assert await kit.count_events(platform, pool) == before
    assert theirs.id not in {a.id async for a in tenant.agents().list_all()}
    # Still whole under its own issuer.
    assert (await tenant.agents(issuer_id=other_issuer).get(theirs.id)).name == "theirs"


async def test_another_agents_verifier_is_404(tenant):
    mine = await tenant.agents().create({"name": "mine"})
    other = await tenant.agents().create({"name": "other"})
    theirs = await tenant.verifiers(other.id).create({"type": "secret"})
    with pytest.raises(NotFoundError):
        await tenant.verifiers(mine.id).delete(theirs.id)
    assert [v.id for v in (await tenant.verifiers(other.id).list()).data] == [theirs.id]


@pytest.mark.in_process  # another account: made in-process, no Core API route creates one
async def test_another_accounts_agents_are_out_of_reach(tenant, platform, kit):
    other = await kit.new_tenant(platform, own_account=True)
    theirs = await other.agents().create({"name": "theirs"})
    verifier = await other.verifiers(theirs.id).create({"type": "secret"})
    await other.verifiers(theirs.id).create(WALLET)
    # Their issuer under my account: no such issuer here.
    for call in [
        tenant.issuer(issuer_id=other.issuer_id).agents.list(),
        tenant.issuer(issuer_id=other.issuer_id).agents.create({"name": "x"}),
        *calls(tenant.issuer(issuer_id=other.issuer_id), theirs.id, verifier.id),
    ]:
        with pytest.raises(NotFoundError):
            await call
    # Their agent under my issuer: no such agent here.
    for call in calls(tenant.issuer(), theirs.id, verifier.id):
        with pytest.raises(NotFoundError):
            await call
    # My key on their account's paths: refused.
    mine_on_theirs = AuthPIAdmin(
        api_key=tenant.key, account_id=other.account_id, base_url=platform.api_url, retries=False
    )
    for call in [
        mine_on_theirs.issuer(other.issuer_id).agents.list(),
        *calls(mine_on_theirs.issuer(other.issuer_id), theirs.id, verifier.id),
    ]:
        with pytest.raises(ForbiddenError):
            await call
    # Their wallet resolves nothing under my issuer, and is free to register here.
    async with tenant.http() as http:
        response = await http.get(tenant.agents_path(), params={"wallet": f"eip155:8453:{BASE}"})
        assert response.json()["data"] == []
    mine = await tenant.agents().create({"name": "mine"})
    assert (await tenant.verifiers(mine.id).create(WALLET)).agent_id == mine.id


async def test_deleting_an_issuer_deletes_its_agents(tenant):
    issuer_id = await tenant.new_issuer()
    agents = tenant.agents(issuer_id=issuer_id)
    doomed = [(await agents.create({"name": f"bot-{i}"})).id for i in range(3)]
    await tenant.issuer(issuer_id=issuer_id).agent(doomed[0]).verifiers.create(WALLET)
    await tenant.sdk().issuers.delete(issuer_id)

    async def deletions() -> list[dict] | None:
        """The issuer's `agent.deleted` events in the Events API (the audit log follows every
        service's events from JetStream; the cascade runs after the issuer's deletion)."""
        params = {"issuer_id": issuer_id, "event_types": "agent.deleted"}
        async with tenant.http() as http:
            found = (await http.get(tenant.events_path, params=params)).json()["data"]
        return found if len(found) == len(doomed) else None

    deleted = await eventually(deletions)
    assert sorted(e["subject"]["agent_id"] for e in deleted) == sorted(doomed)
    assert {e["trigger"] for e in deleted} == {"system"}
    with pytest.raises(NotFoundError):
        await agents.list()
    with pytest.raises(NotFoundError):
        await agents.create({"name": "late"})
    # The wallet is free for the account's other issuers.
    mine = await tenant.agents().create({"name": "mine"})
    assert (await tenant.verifiers(mine.id).create(WALLET)).agent_id == mine.id


async def test_an_unknown_issuer_is_a_prompt_404(tenant):
    for issuer_id in ("i_" + "0" * 25, "i_nope", "acc_" + "z" * 25):
        with pytest.raises(NotFoundError):
            await tenant.agents(issuer_id=issuer_id).list()
