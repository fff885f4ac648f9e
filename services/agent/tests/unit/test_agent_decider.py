"""The Agent decider (platform.md 3): creation, PATCH semantics (status with reason and author,
scopes, metadata merge, no-op), the verifier limit and duplicate wallets, tenant checks,
If-Match, and the hard delete."""

from __future__ import annotations

import pytest

from authpi.agent.domain import agent
from authpi.agent.domain.commands import (
    AddVerifier,
    CreateAgent,
    DeleteAgent,
    NewVerifier,
    RemoveVerifier,
    UpdateAgent,
)
from authpi.contracts.agent import (
    AgentCreated,
    AgentDeleted,
    AgentDescriptor,
    AgentUpdated,
    AgentVerifierAdded,
    AgentVerifierRemoved,
    VerifierCredential,
)
from authpi.errors import Conflict, InvalidRequest, NotFound, PreconditionFailed
from authpi.testing.decider import DeciderSpec

AGT, ISS, T0 = "agt_" + "a" * 32, "i_" + "b" * 25, 1_781_222_400_000


def created(**overrides) -> AgentCreated:
    fields = {
        "id": AGT,
        "issuer_id": ISS,
        "name": "bot",
        "model": "m",
        "scopes": ["a"],
        "created_at": T0,
        **overrides,
    }
    return AgentCreated(**fields)


def added(n: int, kind: str = "secret", address: str | None = None) -> AgentVerifierAdded:
    return AgentVerifierAdded(
        agent_id=AGT,
        issuer_id=ISS,
        verifier_id=f"avf_{n}",
        verifier_type=kind,
        secret_sha256="d" * 64 if kind == "secret" else None,
        network="eip155:1" if kind == "wallet" else None,
        lookup_address=address,
        created_at=T0 + n,
    )


def add(n: int, kind: str = "secret", address: str | None = None) -> AddVerifier:
    new = NewVerifier(
        verifier_id=f"avf_{n}",
        type=kind,
        secret_sha256="d" * 64 if kind == "secret" else None,
        network="eip155:1" if kind == "wallet" else None,
        lookup_address=address,
    )
    return AddVerifier(agent_id=AGT, issuer_id=ISS, now=T0 + n, verifier=new)


@pytest.fixture
def spec() -> DeciderSpec:
    return DeciderSpec(agent)


def test_create_makes_an_active_agent(spec):
    cmd = CreateAgent(agent_id=AGT, issuer_id=ISS, now=T0, name="bot", model="m", scopes=["a"])
    spec.given().when(cmd).then(created())


def test_create_twice_is_a_conflict(spec):
    cmd = CreateAgent(agent_id=AGT, issuer_id=ISS, now=T0, name="bot")
    spec.given(created()).when(cmd).raises(Conflict)


def test_a_status_change_is_agent_updated_and_drops_the_old_reason(spec):
    suspended = UpdateAgent(
        agent_id=AGT,
        issuer_id=ISS,
        now=T0 + 10,
        status="suspended",
        status_reason="abuse",
        status_by="ops",
    )
    event = AgentUpdated(
        id=AGT,
        issuer_id=ISS,
        name="bot",
        model="m",
        scopes=["a"],
        status="suspended",
        status_reason="abuse",
        status_by="ops",
        changed=["status", "status_reason", "status_by"],
        status_at=T0 + 10,
        updated_at=T0 + 10,
    )
    spec.given(created()).when(suspended).then(event)
    blocked = UpdateAgent(agent_id=AGT, issuer_id=ISS, now=T0 + 20, status="blocked")
    [after] = agent.decide(blocked, spec.given(created(), event).state())
    assert after.status == "blocked" and after.status_reason is None and after.status_by is None


def test_a_patch_without_change_appends_nothing(spec):
    cmd = UpdateAgent(
        agent_id=AGT,
        issuer_id=ISS,
        now=T0 + 1,
        name="bot",
        scopes=["a"],
        status="active",
        metadata={},
    )
    spec.given(created()).when(cmd).then()


def test_scopes_and_metadata_change_with_updated_at_strictly_after(spec):
    cmd = UpdateAgent(
        agent_id=AGT, issuer_id=ISS, now=T0 - 5, scopes=["a", "b"], metadata={"k": "v"}
    )
    [event] = agent.decide(cmd, spec.given(created()).state())
    assert event.changed == ["scopes", "metadata"] and event.updated_at == T0 + 1
    assert event.status_at is None and event.status == "active"


def test_another_issuer_or_a_deleted_agent_is_not_found(spec):
    other = UpdateAgent(agent_id=AGT, issuer_id="i_other", now=T0, name="x")
    spec.given(created()).when(other).raises(NotFound)
    gone = AgentDeleted(id=AGT, issuer_id=ISS, name="bot", deleted_at=T0 + 1)
    spec.given(created(), gone).when(DeleteAgent(agent_id=AGT, issuer_id=ISS, now=T0)).raises(
        NotFound
    )
    spec.given().when(add(1)).raises(NotFound)


def test_if_match_guards_update_and_delete(spec):
    stale = UpdateAgent(agent_id=AGT, issuer_id=ISS, now=T0, name="x", if_match='"1"')
    spec.given(created()).when(stale).raises(PreconditionFailed)
    fresh = DeleteAgent(agent_id=AGT, issuer_id=ISS, now=T0 + 5, if_match=f'"{T0}"')
    [event] = agent.decide(fresh, spec.given(created()).state())
    assert isinstance(event, AgentDeleted)


def test_delete_lists_the_verifiers_it_takes_along(spec):
    cmd = DeleteAgent(agent_id=AGT, issuer_id=ISS, now=T0 + 9)
    spec.given(created(), added(1), added(2, "wallet", "0xab")).when(cmd).then(
        AgentDeleted(
            id=AGT,
            issuer_id=ISS,
            name="bot",
            agent=AgentDescriptor(model="m"),
            verifier_ids=["avf_1", "avf_2"],
            deleted_at=T0 + 9,
        )
    )


def test_a_verifier_is_added_with_the_agents_descriptor(spec):
    [event] = agent.decide(add(1), spec.given(created()).state())
    assert event.verifier_id == "avf_1" and event.agent == AgentDescriptor(model="m")
    assert event.secret_sha256 == "d" * 64 and event.credential == VerifierCredential()


def test_the_21st_verifier_is_refused(spec):
    twenty = [added(n) for n in range(20)]
    error = spec.given(created(), *twenty).when(add(20)).raises(InvalidRequest)
    assert error.fields[0].code == "limit_exceeded"
    [nineteenth] = agent.decide(add(19), spec.given(created(), *twenty[:19]).state())
    assert nineteenth.verifier_id == "avf_19"


def test_the_same_wallet_twice_on_one_agent_is_a_conflict(spec):
    spec.given(created(), added(1, "wallet", "0xab")).when(add(2, "wallet", "0xab")).raises(
        Conflict
    )


def test_removing_a_verifier(spec):
    cmd = RemoveVerifier(agent_id=AGT, issuer_id=ISS, verifier_id="avf_1", now=T0 + 5)
    spec.given(created(), added(1, "wallet", "0xab")).when(cmd).then(
        AgentVerifierRemoved(
            agent_id=AGT,
            issuer_id=ISS,
            verifier_id="avf_1",
            verifier_type="wallet",
            network="eip155:1",
            lookup_address="0xab",
            agent=AgentDescriptor(model="m"),
            removed_at=T0 + 5,
        )
    )
    removed = agent.decide(cmd, spec.given(created(), added(1)).state())
    spec.given(created(), added(1), *removed).when(cmd).raises(NotFound)
