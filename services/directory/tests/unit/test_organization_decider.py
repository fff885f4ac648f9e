"""The Organization decider (with its memberships and groups) through DeciderSpec."""

from __future__ import annotations

from authpi.contracts.directory import (
    OrganizationCreated,
    OrganizationDeleted,
    OrganizationGroupCreated,
    OrganizationGroupDeleted,
    OrganizationMembershipCreated,
    OrganizationMembershipDeleted,
    OrganizationMembershipUpdated,
    OrganizationReactivated,
    OrganizationSuspended,
    OrganizationUpdated,
)
from authpi.directory.domain import organization
from authpi.directory.domain.commands.organization import (
    AddMember,
    CreateGroup,
    CreateOrganization,
    DeleteGroup,
    DeleteOrganization,
    FinishOrganizationDeletion,
    OrgRef,
    Profile,
    RemoveMember,
    RequireLiveOrganization,
    UpdateMember,
    UpdateOrganization,
)
from authpi.errors import Conflict, NotFound, PreconditionFailed, Unprocessable
from authpi.testing.decider import DeciderSpec

REF = OrgRef(org_id="org_1", account_id="acc_1", issuer_id="i_1")


def spec() -> DeciderSpec:
    return DeciderSpec(organization)


def created(**profile: object) -> OrganizationCreated:
    return OrganizationCreated(
        id="org_1", issuer_id="i_1", account_id="acc_1", name="Acme", created_at=10, **profile
    )


def joined(
    member_id: str = "usr_1", groups: list[str] | None = None
) -> OrganizationMembershipCreated:
    return OrganizationMembershipCreated(
        org_id="org_1", issuer_id="i_1", member_id=member_id, member_type="user",
        scopes=["member"], groups=groups or [], joined_at=20,
    )  # fmt: skip


def group_created(group_id: str = "grp_1") -> OrganizationGroupCreated:
    return OrganizationGroupCreated(
        id=group_id, org_id="org_1", issuer_id="i_1", name="Admins", created_at=15
    )


def deleting() -> OrganizationUpdated:
    return OrganizationUpdated(
        id="org_1", issuer_id="i_1", account_id="acc_1", name="Acme", changed=["status"],
        status="deleting", updated_at=30,
    )  # fmt: skip


def add(member_id: str = "usr_1", **kw: object) -> AddMember:
    return AddMember(ref=REF, member_id=member_id, member_type="user", now=40, **kw)  # type: ignore[arg-type]


def test_create_on_absent_emits_created():
    cmd = CreateOrganization(ref=REF, profile=Profile(name="Acme"), now=10)
    spec().given().when(cmd).then(created())


def test_create_by_user_also_makes_the_user_a_member_with_all_scopes():
    cmd = CreateOrganization(
        ref=REF, profile=Profile(name="Acme", scopes=["owner"]), now=10, by_user_id="usr_9"
    )
    events = organization.decide(cmd, organization.INITIAL)
    assert [type(e) for e in events] == [OrganizationCreated, OrganizationMembershipCreated]
    assert events[1].scopes == ["owner"] and events[1].member_id == "usr_9"  # type: ignore[attr-defined]


def test_update_emits_snapshot_naming_what_changed():
    cmd = UpdateOrganization(ref=REF, now=50, changes={"name": "Acme 2", "metadata": {"a": 1}})
    (event,) = organization.decide(cmd, spec().given(created()).state())
    assert isinstance(event, OrganizationUpdated)
    assert event.changed == ["name", "metadata"] and event.name == "Acme 2"


def test_update_changing_nothing_emits_nothing():
    cmd = UpdateOrganization(ref=REF, now=50, changes={"name": "Acme"}, status="active")
    spec().given(created()).when(cmd).then()


def test_suspend_then_reactivate_emit_status_events():
    suspend = UpdateOrganization(ref=REF, now=50, status="suspended", status_reason="unpaid")
    spec().given(created()).when(suspend).then(
        OrganizationSuspended(id="org_1", status_reason="unpaid", status_at=50)
    )
    suspended = OrganizationSuspended(id="org_1", status_at=50)
    reactivate = UpdateOrganization(ref=REF, now=60, status="active")
    spec().given(created(), suspended).when(reactivate).then(
        OrganizationReactivated(id="org_1", status_at=60)
    )


def test_update_with_stale_if_match_is_precondition_failed():
    cmd = UpdateOrganization(ref=REF, now=50, changes={"name": "x"}, if_match='"1"')
    spec().given(created()).when(cmd).raises(PreconditionFailed)


def test_other_issuer_sees_no_organization():
    other = OrgRef(org_id="org_1", account_id="acc_1", issuer_id="i_2")
    spec().given(created()).when(UpdateOrganization(ref=other, now=50)).raises(NotFound)


def test_delete_records_deleting_and_repeats_as_nothing():
    (event,) = organization.decide(
        DeleteOrganization(ref=REF, now=30), spec().given(created()).state()
    )
    assert isinstance(event, OrganizationUpdated) and event.status == "deleting"
    spec().given(created(), deleting()).when(DeleteOrganization(ref=REF, now=31)).then()


def test_deleting_organization_refuses_every_other_command():
    spec().given(created(), deleting()).when(add()).raises(NotFound)
    spec().given(created(), deleting()).when(RequireLiveOrganization(ref=REF)).raises(NotFound)


def test_finish_deletion_emits_deleted_once():
    finish = FinishOrganizationDeletion(org_id="org_1", now=40)
    spec().given(created(), deleting()).when(finish).then(
        OrganizationDeleted(id="org_1", issuer_id="i_1", deleted_at=40)
    )
    gone = OrganizationDeleted(id="org_1", issuer_id="i_1", deleted_at=40)
    spec().given(created(), deleting(), gone).when(finish).then()


def test_finish_deletion_of_live_organization_is_a_conflict():
    finish = FinishOrganizationDeletion(org_id="org_1", now=40)
    spec().given(created()).when(finish).raises(Conflict)


def test_deleted_organization_is_not_found():
    gone = OrganizationDeleted(id="org_1", issuer_id="i_1", deleted_at=40)
    spec().given(created(), deleting(), gone).when(DeleteOrganization(ref=REF, now=50)).raises(
        NotFound
    )


def test_add_member_takes_default_member_scopes():
    (event,) = organization.decide(
        add(), spec().given(created(default_member_scopes=["member"])).state()
    )
    assert isinstance(event, OrganizationMembershipCreated) and event.scopes == ["member"]


def test_add_existing_member_is_a_conflict():
    spec().given(created(), joined()).when(add()).raises(Conflict)


def test_add_member_beyond_max_members_is_unprocessable():
    spec().given(created(max_members=1), joined()).when(add("usr_2")).raises(Unprocessable)


def test_add_member_with_unknown_group_or_scope_is_unprocessable():
    spec().given(created()).when(add(groups=["grp_x"])).raises(Unprocessable)
    spec().given(created(scopes=["a"])).when(add(scopes=["b"])).raises(Unprocessable)


def test_update_member_suspends_and_names_the_change():
    cmd = UpdateMember(ref=REF, member_id="usr_1", now=50, status="suspended")
    (event,) = organization.decide(cmd, spec().given(created(), joined()).state())
    assert isinstance(event, OrganizationMembershipUpdated)
    assert event.changed == ["status"] and event.status == "suspended"


def test_remove_missing_member_is_not_found():
    spec().given(created()).when(RemoveMember(ref=REF, member_id="usr_1", now=50)).raises(NotFound)


def test_remove_member_emits_deleted():
    spec().given(created(), joined()).when(RemoveMember(ref=REF, member_id="usr_1", now=50)).then(
        OrganizationMembershipDeleted(
            org_id="org_1", issuer_id="i_1", member_id="usr_1", member_type="user", deleted_at=50
        )
    )


def test_deleting_a_group_removes_it_from_memberships():
    given = spec().given(created(), group_created(), joined(groups=["grp_1"]))
    cmd = DeleteGroup(ref=REF, group_id="grp_1", now=50)
    (event,) = organization.decide(cmd, given.state())
    assert isinstance(event, OrganizationGroupDeleted)
    state = organization.evolve(given.state(), event)
    assert state.members["usr_1"].groups == [] and "grp_1" not in state.groups  # type: ignore[union-attr]


def test_create_group_twice_is_a_conflict():
    cmd = CreateGroup(ref=REF, group_id="grp_1", name="Admins", now=15)
    spec().given(created(), group_created()).when(cmd).raises(Conflict)
