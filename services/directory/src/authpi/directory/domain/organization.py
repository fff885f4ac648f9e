"""The Organization aggregate (core-api.md 3.12): profile and lifecycle; its memberships
(org_members) and groups (org_groups) share its stream, so that `max_members`, group references
and the delete cascade are decided against one consistent state.

Lifecycle: active <-> suspended (PATCH status); DELETE makes it `deleting` (organization.updated),
and FinishOrganizationDeletion ends the cascade with the single `organization.deleted`. Both steps
repeat harmlessly, so an interrupted cascade is resumed by running them again."""

from __future__ import annotations

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.directory import (
    OrganizationCreated,
    OrganizationDeleted,
    OrganizationGroupCreated,
    OrganizationGroupDeleted,
    OrganizationGroupUpdated,
    OrganizationMembershipCreated,
    OrganizationMembershipDeleted,
    OrganizationMembershipUpdated,
    OrganizationReactivated,
    OrganizationSsoDisabled,
    OrganizationSsoDomainCreated,
    OrganizationSsoDomainDeleted,
    OrganizationSsoDomainVerified,
    OrganizationSsoEnabled,
    OrganizationSsoUpdated,
    OrganizationSuspended,
    OrganizationUpdated,
)
from authpi.directory.domain import org_groups, org_members, org_sso
from authpi.directory.domain.commands.organization import (
    PROFILE_FIELDS,
    AddMember,
    AddSsoDomain,
    CreateGroup,
    CreateOrganization,
    DeleteGroup,
    DeleteOrganization,
    DropDepartedMember,
    FinishOrganizationDeletion,
    Profile,
    RemoveMember,
    RemoveSsoDomain,
    RequireLiveOrganization,
    RotateSsoSecret,
    UpdateGroup,
    UpdateMember,
    UpdateOrganization,
    VerifySsoDomain,
)
from authpi.directory.domain.organization_state import (
    Absent,
    Gone,
    Org,
    Organization,
    live_org,
)
from authpi.errors import Conflict, NotFound
from authpi.web.etag import check_if_match
from authpi.web.metadata import merge_metadata

INITIAL: Organization = Absent()
OrgCommand = (
    CreateOrganization
    | UpdateOrganization
    | DeleteOrganization
    | FinishOrganizationDeletion
    | RequireLiveOrganization
)
OrganizationCommand = (
    OrgCommand | org_members.MemberCommand | org_groups.GroupCommand | org_sso.SsoCommand
)
_MERGED = ("metadata", "custom_fields")


def decide(cmd: OrganizationCommand, state: Organization) -> list[Event]:
    match cmd:
        case CreateOrganization():
            return _create(cmd, state)
        case UpdateOrganization():
            return _update(cmd, live_org(state, cmd.ref))
        case DeleteOrganization():
            return _delete(cmd, state)
        case FinishOrganizationDeletion():
            return _finish(cmd, state)
        case RequireLiveOrganization():
            live_org(state, cmd.ref)
            return []
        case AddMember() | UpdateMember() | RemoveMember():
            return org_members.decide(cmd, live_org(state, cmd.ref))
        case DropDepartedMember():
            return org_members.drop_departed(cmd, state)
        case CreateGroup() | UpdateGroup() | DeleteGroup():
            return org_groups.decide(cmd, live_org(state, cmd.ref))
        case AddSsoDomain() | VerifySsoDomain() | RemoveSsoDomain() | RotateSsoSecret():
            return org_sso.decide(cmd, live_org(state, cmd.ref))
    raise AssertionError(f"unhandled command {cmd!r}")


def _create(cmd: CreateOrganization, state: Organization) -> list[Event]:
    if not isinstance(state, Absent):
        raise Conflict("the organization already exists", reason="organization.exists")
    created = OrganizationCreated(
        id=cmd.ref.org_id, issuer_id=cmd.ref.issuer_id, account_id=cmd.ref.account_id,
        **msgspec.structs.asdict(cmd.profile), created_at=cmd.now,
    )  # fmt: skip
    if cmd.by_user_id is None:
        return [created]
    owner = OrganizationMembershipCreated(
        org_id=cmd.ref.org_id, issuer_id=cmd.ref.issuer_id, member_id=cmd.by_user_id,
        member_type="user", scopes=list(cmd.profile.scopes), joined_at=cmd.now,
    )  # fmt: skip
    return [created, owner]


def _update(cmd: UpdateOrganization, org: Org) -> list[Event]:
    check_if_match(cmd.if_match, org.etag)
    at = org.changed_at(cmd.now)
    events: list[Event] = []
    profile = _patched(org.profile, cmd.changes)
    changed = [f for f in PROFILE_FIELDS if getattr(profile, f) != getattr(org.profile, f)]
    if changed:
        events.append(snapshot(org, profile, changed, at))
        events.extend(org_sso.config_changed(org, profile.sso, at))
    if cmd.status == "suspended" and org.status != "suspended":
        events.append(
            OrganizationSuspended(
                id=org.id, status_reason=cmd.status_reason, status_by=cmd.status_by, status_at=at
            )
        )
    if cmd.status == "active" and org.status != "active":
        events.append(
            OrganizationReactivated(
                id=org.id, status_reason=cmd.status_reason, status_by=cmd.status_by, status_at=at
            )
        )
    return events


def _patched(profile: Profile, changes: dict[str, object]) -> Profile:
    values = dict(changes)
    for field in _MERGED:
        if field in values:
            values[field] = merge_metadata(getattr(profile, field), values[field])  # type: ignore[arg-type]
    return msgspec.structs.replace(profile, **values)


def snapshot(
    org: Org, profile: Profile, changed: list[str], at: int, status: str | None = None
) -> OrganizationUpdated:
    return OrganizationUpdated(
        id=org.id, issuer_id=org.issuer_id, account_id=org.account_id,
        **msgspec.structs.asdict(profile), changed=changed, status=status, updated_at=at,
    )  # fmt: skip


def _delete(cmd: DeleteOrganization, state: Organization) -> list[Event]:
    if isinstance(state, Org) and state.owned_by(cmd.ref) and state.status == "deleting":
        return []  # already started: the handler resumes the cascade
    org = live_org(state, cmd.ref)
    check_if_match(cmd.if_match, org.etag)
    return [snapshot(org, org.profile, ["status"], org.changed_at(cmd.now), status="deleting")]


def _finish(cmd: FinishOrganizationDeletion, state: Organization) -> list[Event]:
    match state:
        case Gone():
            return []
        case Org(status="deleting"):
            deleted_at = state.changed_at(cmd.now)
            return [
                *org_sso.removals(state, deleted_at),
                OrganizationDeleted(id=state.id, issuer_id=state.issuer_id, deleted_at=deleted_at),
            ]
        case Org():
            raise Conflict("the organization is not being deleted", reason="organization.live")
        case _:
            raise NotFound("no such organization", reason="organization.not_found")


def evolve(state: Organization, event: Event) -> Organization:
    match state, event:
        case Absent(), OrganizationCreated():
            return Org(
                id=event.id, account_id=event.account_id, issuer_id=event.issuer_id,
                profile=_profile_of(event), created_at=event.created_at,
            )  # fmt: skip
        case Org(), OrganizationUpdated():
            return msgspec.structs.replace(
                state, profile=_profile_of(event), status=event.status or state.status,
                status_at=event.updated_at if event.status else state.status_at,
                updated_at=event.updated_at,
            )  # fmt: skip
        case Org(), OrganizationSuspended() | OrganizationReactivated():
            return msgspec.structs.replace(
                state, status=event.status, status_at=event.status_at, updated_at=event.status_at
            )
        case Org(), OrganizationDeleted():
            return Gone(state.id)
        case Org(), OrganizationMembershipCreated() | OrganizationMembershipUpdated() | (
            OrganizationMembershipDeleted()
        ):
            return org_members.evolve(state, event)
        case Org(), OrganizationGroupCreated() | OrganizationGroupUpdated() | (
            OrganizationGroupDeleted()
        ):
            return org_groups.evolve(state, event)
        case Org(), OrganizationSsoEnabled() | OrganizationSsoDisabled() | (
            OrganizationSsoUpdated()
            | OrganizationSsoDomainCreated()
            | OrganizationSsoDomainVerified()
            | OrganizationSsoDomainDeleted()
        ):
            return org_sso.evolve(state, event)
        case _:
            return state


def _profile_of(event: OrganizationCreated | OrganizationUpdated) -> Profile:
    return Profile(**{f: getattr(event, f) for f in PROFILE_FIELDS})
