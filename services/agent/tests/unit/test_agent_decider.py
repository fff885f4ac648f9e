"""The Agent decider (platform.md 3): creation, PATCH semantics (status with reason and author,
scopes, metadata merge, no-op), the verifier limit and duplicate wallets, tenant checks,
If-Match, and the hard delete."""

from __future__ import annotations

import pytest

from authpi.agent.domain import agent
from authpi.errors import Conflict, InvalidRequest, NotFound, PreconditionFailed
from authpi.testing.decider import DeciderSpec
from services.agent.tests.factories import (
    DESCRIPTOR,
    T0,
    add_verifier,
    agent_created,
    agent_deleted,
    agent_updated,
    create_agent,
    delete_agent,
    remove_verifier,
    update_agent,
    verifier_added,
    verifier_removed,
)

SUSPENDED = agent_updated(
    ["status", "status_reason", "status_by"], T0 + 10, status="suspended",
    status_reason="abuse", status_by="ops", status_at=T0 + 10,
)  # fmt: skip


@pytest.fixture
def spec() -> DeciderSpec:
    return DeciderSpec(agent)


def test_create_makes_an_active_agent(spec):
    cmd = create_agent(model="m", scopes=["a"])
    spec.given().when(cmd).then(agent_created())


def test_create_twice_is_a_conflict(spec):
    spec.given(agent_created()).when(create_agent()).raises(Conflict)


def test_a_status_change_is_agent_updated(spec):
    cmd = update_agent(T0 + 10, status="suspended", status_reason="abuse", status_by="ops")
    spec.given(agent_created()).when(cmd).then(SUSPENDED)


def test_a_status_change_drops_the_old_reason_and_author(spec):
    spec.given(agent_created(), SUSPENDED).when(update_agent(T0 + 20, status="blocked")).then(
        agent_updated(
            ["status", "status_reason", "status_by"], T0 + 20, status="blocked", status_at=T0 + 20
        )
    )


def test_a_patch_without_change_appends_nothing(spec):
    cmd = update_agent(T0 + 1, name="bot", scopes=["a"], status="active", metadata={})
    spec.given(agent_created()).when(cmd).then()


def test_scopes_and_metadata_change_with_updated_at_strictly_after(spec):
    cmd = update_agent(T0 - 5, scopes=["a", "b"], metadata={"k": "v"})
    spec.given(agent_created()).when(cmd).then(
        agent_updated(["scopes", "metadata"], T0 + 1, scopes=["a", "b"], metadata={"k": "v"})
    )


def test_another_issuers_agent_is_not_found(spec):
    other = update_agent(T0, issuer_id="i_other", name="x")
    spec.given(agent_created()).when(other).raises(NotFound)


def test_a_deleted_agent_is_not_found(spec):
    spec.given(agent_created(), agent_deleted(T0 + 1)).when(delete_agent(T0)).raises(NotFound)


def test_a_verifier_of_no_agent_is_not_found(spec):
    spec.given().when(add_verifier(1)).raises(NotFound)


def test_a_stale_if_match_is_a_failed_precondition(spec):
    stale = update_agent(T0, name="x", if_match='"1"')
    spec.given(agent_created()).when(stale).raises(PreconditionFailed)


def test_a_fresh_if_match_lets_the_delete_through(spec):
    fresh = delete_agent(T0 + 5, if_match=f'"{T0}"')
    spec.given(agent_created()).when(fresh).then(agent_deleted(T0 + 5, agent=DESCRIPTOR))


def test_delete_lists_the_verifiers_it_takes_along(spec):
    cmd = delete_agent(T0 + 9)
    spec.given(agent_created(), verifier_added(1), verifier_added(2, "wallet", "0xab")).when(
        cmd
    ).then(agent_deleted(T0 + 9, agent=DESCRIPTOR, verifier_ids=["avf_1", "avf_2"]))


def test_a_verifier_is_added_with_the_agents_descriptor(spec):
    spec.given(agent_created()).when(add_verifier(1)).then(verifier_added(1, agent=DESCRIPTOR))


def test_the_21st_verifier_is_refused(spec):
    twenty = [verifier_added(n) for n in range(20)]
    error = spec.given(agent_created(), *twenty).when(add_verifier(20)).raises(InvalidRequest)
    assert error.fields[0].code == "limit_exceeded"


def test_the_20th_verifier_is_added(spec):
    nineteen = [verifier_added(n) for n in range(19)]
    spec.given(agent_created(), *nineteen).when(add_verifier(19)).then(
        verifier_added(19, agent=DESCRIPTOR)
    )


def test_the_same_wallet_twice_on_one_agent_is_a_conflict(spec):
    spec.given(agent_created(), verifier_added(1, "wallet", "0xab")).when(
        add_verifier(2, "wallet", "0xab")
    ).raises(Conflict)


def test_removing_a_verifier(spec):
    removed = verifier_removed(
        1, T0 + 5, verifier_type="wallet", network="eip155:1", lookup_address="0xab",
        agent=DESCRIPTOR,
    )  # fmt: skip
    spec.given(agent_created(), verifier_added(1, "wallet", "0xab")).when(
        remove_verifier(1, T0 + 5)
    ).then(removed)


def test_a_removed_verifier_is_not_found(spec):
    removed = verifier_removed(1, T0 + 5, agent=DESCRIPTOR)
    spec.given(agent_created(), verifier_added(1), removed).when(remove_verifier(1, T0 + 6)).raises(
        NotFound
    )
