"""The Organization decider (with its memberships and groups) through DeciderSpec."""

from __future__ import annotations

import msgspec

from authpi.directory.domain import organization
from authpi.directory.domain.commands.organization import Profile
from authpi.errors import Conflict, NotFound, PreconditionFailed, Unprocessable
from authpi.testing.decider import DeciderSpec
from services.directory.tests.factories import (
    REF,
    add_member,
    create_group,
    create_organization,
    delete_group,
    delete_organization,
    finish_organization_deletion,
    group_created,
    group_deleted,
    member_joined,
    membership_deleted,
    membership_updated,
    organization_created,
    organization_deleted,
    organization_deleting,
    organization_reactivated,
    organization_suspended,
    organization_updated,
    remove_member,
    require_live_organization,
    update_member,
    update_organization,
)


def spec() -> DeciderSpec:
    return DeciderSpec(organization)


def test_create_on_absent_emits_created():
    spec().given().when(create_organization()).then(organization_created())


def test_create_by_user_also_makes_the_user_a_member_with_all_scopes():
    cmd = create_organization(profile=Profile(name="Acme", scopes=["owner"]), by_user_id="usr_9")
    spec().given().when(cmd).then(
        organization_created(scopes=["owner"]),
        member_joined(member_id="usr_9", scopes=["owner"], joined_at=10),
    )


def test_update_emits_snapshot_naming_what_changed():
    cmd = update_organization(changes={"name": "Acme 2", "metadata": {"a": 1}})
    spec().given(organization_created()).when(cmd).then(
        organization_updated(changed=["name", "metadata"], name="Acme 2", metadata={"a": 1},
                             updated_at=50)
    )  # fmt: skip


def test_update_changing_nothing_emits_nothing():
    cmd = update_organization(changes={"name": "Acme"}, status="active")
    spec().given(organization_created()).when(cmd).then()


def test_suspend_then_reactivate_emit_status_events():
    suspend = update_organization(status="suspended", status_reason="unpaid")
    spec().given(organization_created()).when(suspend).then(
        organization_suspended(status_reason="unpaid")
    )
    reactivate = update_organization(now=60, status="active")
    spec().given(organization_created(), organization_suspended()).when(reactivate).then(
        organization_reactivated()
    )


def test_update_with_stale_if_match_is_precondition_failed():
    cmd = update_organization(changes={"name": "x"}, if_match='"1"')
    spec().given(organization_created()).when(cmd).raises(PreconditionFailed)


def test_other_issuer_sees_no_organization():
    other = msgspec.structs.replace(REF, issuer_id="i_2")
    spec().given(organization_created()).when(update_organization(ref=other)).raises(NotFound)


def test_delete_records_deleting_and_repeats_as_nothing():
    spec().given(organization_created()).when(delete_organization()).then(organization_deleting())
    deleting = (organization_created(), organization_deleting())
    spec().given(*deleting).when(delete_organization(now=31)).then()


def test_deleting_organization_refuses_every_other_command():
    deleting = (organization_created(), organization_deleting())
    spec().given(*deleting).when(add_member()).raises(NotFound)
    spec().given(*deleting).when(require_live_organization()).raises(NotFound)


def test_finish_deletion_emits_deleted_once():
    deleting = (organization_created(), organization_deleting())
    finish = finish_organization_deletion()
    spec().given(*deleting).when(finish).then(organization_deleted())
    spec().given(*deleting, organization_deleted()).when(finish).then()


def test_finish_deletion_of_live_organization_is_a_conflict():
    spec().given(organization_created()).when(finish_organization_deletion()).raises(Conflict)


def test_deleted_organization_is_not_found():
    gone = (organization_created(), organization_deleting(), organization_deleted())
    spec().given(*gone).when(delete_organization(now=50)).raises(NotFound)


def test_add_member_takes_default_member_scopes():
    created = organization_created(default_member_scopes=["member"])
    spec().given(created).when(add_member()).then(member_joined(joined_at=40))


def test_add_existing_member_is_a_conflict():
    spec().given(organization_created(), member_joined()).when(add_member()).raises(Conflict)


def test_add_member_beyond_max_members_is_unprocessable():
    given = (organization_created(max_members=1), member_joined())
    spec().given(*given).when(add_member(member_id="usr_2")).raises(Unprocessable)


def test_add_member_with_unknown_group_or_scope_is_unprocessable():
    spec().given(organization_created()).when(add_member(groups=["grp_x"])).raises(Unprocessable)
    scoped = organization_created(scopes=["a"])
    spec().given(scoped).when(add_member(scopes=["b"])).raises(Unprocessable)


def test_update_member_suspends_and_names_the_change():
    cmd = update_member(status="suspended")
    spec().given(organization_created(), member_joined()).when(cmd).then(
        membership_updated(changed=["status"], status="suspended", scopes=["member"])
    )


def test_remove_missing_member_is_not_found():
    spec().given(organization_created()).when(remove_member()).raises(NotFound)


def test_remove_member_emits_deleted():
    spec().given(organization_created(), member_joined()).when(remove_member()).then(
        membership_deleted()
    )


def test_deleting_a_group_removes_it_from_memberships():
    given = (organization_created(), group_created(), member_joined(groups=["grp_1"]))
    spec().given(*given).when(delete_group()).then(group_deleted())
    state = spec().given(*given, group_deleted()).state()
    assert state.members["usr_1"].groups == [] and "grp_1" not in state.groups


def test_create_group_twice_is_a_conflict():
    spec().given(organization_created(), group_created()).when(create_group()).raises(Conflict)
