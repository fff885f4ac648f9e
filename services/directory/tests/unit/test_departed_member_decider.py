"""DropDepartedMember (a member that no longer exists, e.g. a deleted agent) through
DeciderSpec: it drops the membership once, and decides nothing when there is nothing to drop."""

from __future__ import annotations

from authpi.contracts.directory import (
    OrganizationCreated,
    OrganizationDeleted,
    OrganizationMembershipCreated,
    OrganizationMembershipDeleted,
    OrganizationUpdated,
)
from authpi.directory.domain import organization
from authpi.directory.domain.commands.organization import DropDepartedMember
from authpi.directory.domain.org_members import member_type_of
from authpi.testing.decider import DeciderSpec

AGENT = "agt_0192f0c4a1b27c3d8e9f0a1b2c3d4e5f"


def spec() -> DeciderSpec:
    return DeciderSpec(organization)


def created() -> OrganizationCreated:
    return OrganizationCreated(
        id="org_1", issuer_id="i_1", account_id="acc_1", name="Acme", created_at=10
    )


def agent_joined() -> OrganizationMembershipCreated:
    return OrganizationMembershipCreated(
        org_id="org_1", issuer_id="i_1", member_id=AGENT, member_type="agent",
        scopes=["member"], joined_at=20,
    )  # fmt: skip


def drop() -> DropDepartedMember:
    return DropDepartedMember(org_id="org_1", member_id=AGENT, now=50)


def test_departed_agent_membership_is_deleted():
    spec().given(created(), agent_joined()).when(drop()).then(
        OrganizationMembershipDeleted(
            org_id="org_1", issuer_id="i_1", member_id=AGENT, member_type="agent", deleted_at=50
        )
    )


def test_departed_member_already_gone_decides_nothing():
    dropped = OrganizationMembershipDeleted(
        org_id="org_1", issuer_id="i_1", member_id=AGENT, member_type="agent", deleted_at=50
    )
    spec().given(created(), agent_joined(), dropped).when(drop()).then()
    spec().given(created()).when(drop()).then()


def test_departed_member_of_a_missing_or_deleted_organization_decides_nothing():
    spec().given().when(drop()).then()
    deleted = OrganizationDeleted(id="org_1", issuer_id="i_1", deleted_at=40)
    spec().given(created(), agent_joined(), deleted).when(drop()).then()


def test_departed_member_of_a_deleting_organization_is_left_to_the_cascade():
    deleting = OrganizationUpdated(
        id="org_1", issuer_id="i_1", account_id="acc_1", name="Acme", changed=["status"],
        status="deleting", updated_at=30,
    )  # fmt: skip
    spec().given(created(), agent_joined(), deleting).when(drop()).then()


def test_member_type_follows_the_id_prefix():
    assert member_type_of(AGENT) == "agent"
    assert member_type_of("usr_0kfz3m8q1w5e9r2t6y4u7i3o5") == "user"
