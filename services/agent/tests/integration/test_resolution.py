"""Resolving a payer wallet to an agent (platform.md 4.4, OP-8): `GET …/agents?wallet=<CAIP-10>`
answers 0 or 1 agents with their scopes, the matching wallet verifier, and with
`expand=memberships` the agent's organization memberships, which the agent service learns from
the directory's organization events. A resolution counts as a use of the verifier."""

from __future__ import annotations

import pytest

from authpi.testing.plugin import eventually
from services.agent.tests.factories import BASE

# Public APIs only (tests that read the database or reach another account stay all-in-one):
# also run against the distributed run (platform testing plugin).
pytestmark = pytest.mark.sdk


async def resolve(tenant, account_id: str, **params: str) -> list[dict]:
    async with tenant.http() as http:
        response = await http.get(tenant.agents_path(), params={"wallet": account_id, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["has_more"] is False and body["next_cursor"] is None
    return body["data"]


async def add_agent_member(tenant, org_id: str, agent_id: str) -> None:
    """Through the directory's members route, which accepts agents (it learns them from
    agent.* events)."""
    members = tenant.issuer().organization(org_id).members
    await members.create(
        {"member_id": agent_id, "member_type": "agent", "scopes": ["billing:pay"],
         "user_title": "payer bot"}
    )  # fmt: skip


@pytest.mark.sdk(quick=True)
async def test_a_wallet_resolves_to_its_agent_with_scopes(tenant):
    agent = await tenant.agents().create({"name": "payer", "scopes": ["data:read"]})
    verifier = await tenant.verifiers(agent.id).create(
        {"type": "wallet", "credential": {"network": "eip155:8453", "address": BASE}}
    )
    for form in (f"eip155:8453:{BASE}", f"eip155:8453:{BASE.lower()}"):
        found = await resolve(tenant, form)
        assert [a["id"] for a in found] == [agent.id]
        assert found[0]["scopes"] == ["data:read"] and found[0]["status"] == "active"
        assert found[0]["wallet_verifier"]["id"] == verifier.id
        assert "memberships" not in found[0]
    assert await resolve(tenant, f"eip155:1:{BASE}") == []  # another network
    assert await resolve(tenant, f"eip155:8453:0x{'2' * 40}") == []


async def test_a_resolution_counts_a_use_of_the_verifier(tenant):
    agent = await tenant.agents().create({"name": "payer"})
    verifier = await tenant.verifiers(agent.id).create(
        {"type": "wallet", "credential": {"address": f"eip155:8453:{BASE}"}}
    )
    first = (await resolve(tenant, f"eip155:8453:{BASE}"))[0]["wallet_verifier"]
    second = (await resolve(tenant, f"eip155:8453:{BASE}"))[0]["wallet_verifier"]
    assert (first["usage_count"], second["usage_count"]) == (1, 2)
    assert second["last_used_at"] >= first["last_used_at"] > 0
    listed = (await tenant.verifiers(agent.id).list()).data
    assert [(v.id, v.usage_count) for v in listed] == [(verifier.id, 2)]


async def test_resolution_reports_a_suspended_agent_as_such(tenant):
    agent = await tenant.agents().create({"name": "payer"})
    await tenant.verifiers(agent.id).create(
        {"type": "wallet", "credential": {"address": f"eip155:8453:{BASE}"}}
    )
    await tenant.agents().update(agent.id, {"status": "suspended"})
    assert [a["status"] for a in await resolve(tenant, f"eip155:8453:{BASE}")] == ["suspended"]
    assert await resolve(tenant, f"eip155:8453:{BASE}", status="active") == []


async def test_memberships_come_with_expand(tenant, platform, kit):
    agent = await tenant.agents().create({"name": "payer"})
    await tenant.verifiers(agent.id).create(
        {"type": "wallet", "credential": {"address": f"eip155:8453:{BASE}"}}
    )
    assert (await resolve(tenant, f"eip155:8453:{BASE}", expand="memberships"))[0][
        "memberships"
    ] == []
    orgs = tenant.issuer().organizations
    org = await orgs.create({"name": "Acme"})
    await add_agent_member(tenant, org.id, agent.id)

    async def memberships() -> list[dict]:
        found = await resolve(tenant, f"eip155:8453:{BASE}", expand="memberships")
        return found[0]["memberships"]

    [membership] = await eventually(memberships)
    assert membership["org_id"] == org.id and membership["member_id"] == agent.id
    assert membership["member_type"] == "agent" and membership["scopes"] == ["billing:pay"]
    assert membership["status"] == "active" and membership["organization_status"] == "active"

    await orgs.update(org.id, {"status": "suspended"})

    async def suspended() -> bool:
        return (await memberships())[0]["organization_status"] == "suspended"

    await eventually(suspended)
    await tenant.issuer().organization(org.id).members.delete(agent.id)

    async def gone() -> bool:
        return await memberships() == []

    await eventually(gone)


@pytest.mark.parametrize(
    "wallet",
    [
        "eip155:8453",
        "eip155:8453:",
        f"8453:{BASE}",
        f"eip155:8453:{BASE}:extra",
        f"cosmos:hub:{BASE}",
        f"eip155:8453:{BASE[:-2]}",
        f"eip155:8453:{BASE}\n",
        "ünï:cödé:x",
        "x" * 5000,
    ],
)
async def test_bad_caip10_is_400(tenant, wallet):
    async with tenant.http() as http:
        response = await http.get(tenant.agents_path(), params={"wallet": wallet})
    assert response.status_code == 400, response.text
    assert response.json()["fields"][0]["field"] == "wallet"
