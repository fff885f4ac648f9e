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
    OrganizationInvitationAccepted,
    OrganizationInvitationCreated,
    OrganizationInvitationDeclined,
    OrganizationInvitationDeleted,
    OrganizationInvitationResent,
    OrganizationInvitationUpdated,
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
from authpi.directory.domain import (
    org_groups,
    org_invitations,
    org_members,
    org_sso,
    org_sso_config,
)
from authpi.directory.domain.commands.organization import (
    PROFILE_FIELDS,
    AddMember,
    AddSsoDomain,
    AnswerInvitation,
    CreateGroup,
    CreateInvitation,
    CreateOrganization,
    DeleteGroup,
    DeleteOrganization,
    DropDepartedMember,
    FinishOrganizationDeletion,
    JoinThroughSso,
    Profile,
    RemoveMember,
    RemoveSsoDomain,
    RequireLiveOrganization,
    ResendInvitation,
    RevokeInvitation,
    RotateSsoSecret,
    UpdateGroup,
    UpdateInvitation,
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
    OrgCommand
    | org_members.MemberCommand
    | org_groups.GroupCommand
    | org_invitations.InvitationCommand
    | org_sso.SsoCommand
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
        case (
            CreateInvitation()
            | UpdateInvitation()
            | ResendInvitation()
            | RevokeInvitation()
            | AnswerInvitation()
        ):
            return org_invitations.decide(cmd, state)
        case (
            AddSsoDomain() | VerifySsoDomain() | RemoveSsoDomain() | RotateSsoSecret()
            | JoinThroughSso()
        ):  # fmt: skip
            return org_sso.decide(cmd, live_org(state, cmd.ref))
    raise AssertionError(f"unhandled command {cmd!r}")


def _create(cmd: CreateOrganization, state: Organization) -> list[Event]:
    if not isinstance(state, Absent):
        raise Conflict("the organization already exists", reason="organization.exists")
    secret_set = None if cmd.sso_secret is None else cmd.sso_secret.sealed is not None
    sso = org_sso_config.merged(
        {}, cmd.profile.sso, secret_set=secret_set, allow_insecure=cmd.allow_insecure_sso
    )
    profile = msgspec.structs.replace(cmd.profile, sso=sso)
    ref = cmd.ref
    created = OrganizationCreated(
        id=ref.org_id, issuer_id=ref.issuer_id, account_id=ref.account_id,
        **msgspec.structs.asdict(profile), created_at=cmd.now,
    )  # fmt: skip
    events: list[Event] = [created]
    if cmd.profile.sso or cmd.sso_secret is not None:
        # The configuration's own event, as a PATCH would emit it: it carries the wrapped secret.
        default = org_sso_config.as_object(org_sso_config.SsoConfig())
        events.extend(org_sso.config_changed(
            ref.org_id, ref.issuer_id, default, sso, cmd.sso_secret, cmd.now))  # fmt: skip
    if cmd.by_user_id is not None:
        events.append(OrganizationMembershipCreated(
            org_id=ref.org_id, issuer_id=ref.issuer_id, member_id=cmd.by_user_id,
            member_type="user", scopes=list(profile.scopes), joined_at=cmd.now,
        ))  # fmt: skip
    return events


def _update(cmd: UpdateOrganization, org: Org) -> list[Event]:
    check_if_match(cmd.if_match, org.etag)
    at = org.changed_at(cmd.now)
    events: list[Event] = []
    changes = dict(cmd.changes)
    if "sso" in changes or cmd.sso_secret is not None:
        secret_set = None if cmd.sso_secret is None else cmd.sso_secret.sealed is not None
        changes["sso"] = org_sso_config.merged(
            org.profile.sso, changes.get("sso", {}), secret_set=secret_set,
            allow_insecure=cmd.allow_insecure_sso,
        )  # fmt: skip
    profile = _patched(org.profile, changes)
    changed = [f for f in PROFILE_FIELDS if getattr(profile, f) != getattr(org.profile, f)]
    if changed:
        events.append(snapshot(org, profile, changed, at))
    events.extend(org_sso.config_changed(
        org.id, org.issuer_id, org.profile.sso, profile.sso, cmd.sso_secret, at))  # fmt: skip
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
        case Org(), OrganizationInvitationCreated() | OrganizationInvitationUpdated() | (
            OrganizationInvitationResent()
        ) | OrganizationInvitationAccepted() | OrganizationInvitationDeclined() | (
            OrganizationInvitationDeleted()
        ):
            return org_invitations.evolve(state, event)
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
