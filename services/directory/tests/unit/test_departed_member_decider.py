"""DropDepartedMember (a member that no longer exists, e.g. a deleted agent) through
DeciderSpec: it drops the membership once, and decides nothing when there is nothing to drop."""

from __future__ import annotations

from authpi.directory.domain import organization
from authpi.directory.domain.org_members import member_type_of
from authpi.testing.decider import DeciderSpec
from services.directory.tests.factories import (
    AGENT,
    agent_joined,
    agent_left,
    drop_departed_member,
    organization_created,
    organization_deleted,
    organization_deleting,
)


def spec() -> DeciderSpec:
    return DeciderSpec(organization)


def test_departed_agent_membership_is_deleted():
    spec().given(organization_created(), agent_joined()).when(drop_departed_member()).then(
        agent_left()
    )


def test_departed_member_already_gone_decides_nothing():
    given = (organization_created(), agent_joined(), agent_left())
    spec().given(*given).when(drop_departed_member()).then()
    spec().given(organization_created()).when(drop_departed_member()).then()


def test_departed_member_of_a_missing_or_deleted_organization_decides_nothing():
    spec().given().when(drop_departed_member()).then()
    given = (organization_created(), agent_joined(), organization_deleted())
    spec().given(*given).when(drop_departed_member()).then()


def test_departed_member_of_a_deleting_organization_is_left_to_the_cascade():
    given = (organization_created(), agent_joined(), organization_deleting())
    spec().given(*given).when(drop_departed_member()).then()


def test_member_type_follows_the_id_prefix():
    assert member_type_of(AGENT) == "agent"
    assert member_type_of("usr_0kfz3m8q1w5e9r2t6y4u7i3o5") == "user"
