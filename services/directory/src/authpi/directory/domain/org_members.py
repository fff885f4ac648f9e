"""Memberships of an organization (core-api.md 3.13), decided against the organization's state:
one membership per member, `max_members` (422 when reached), group ids that exist, scopes from
the organization's vocabulary when it declares one. Membership ETags use `updated_at` (or
`joined_at`)."""

from __future__ import annotations

import msgspec
from msgspec import UNSET

from authpi.contracts.base import Event
from authpi.contracts.directory import (
    OrganizationMembershipCreated,
    OrganizationMembershipDeleted,
    OrganizationMembershipUpdated,
)
from authpi.directory.domain.commands.organization import (
    AddMember,
    DropDepartedMember,
    RemoveMember,
    UpdateMember,
)
from authpi.directory.domain.organization_state import Member, Org, Organization
from authpi.errors import Conflict, FieldProblem, NotFound, Unprocessable
from authpi.web.etag import check_if_match, strictly_after
from authpi.web.metadata import merge_metadata

_FIELDS = ("status", "scopes", "groups", "user_title", "metadata")


def member_type_of(member_id: str) -> str:
    """A member's type from its id's prefix (core-api.md 3.13: `member_type` is optional,
    inferred from the prefix); a member stored with the other type cannot exist, since an add
    looks the id up among the users or the agents of the issuer."""
    return "agent" if member_id.startswith("agt_") else "user"


MemberCommand = AddMember | UpdateMember | RemoveMember | DropDepartedMember


def decide(cmd: MemberCommand, org: Org) -> list[Event]:
    match cmd:
        case AddMember():
            return _add(cmd, org)
        case UpdateMember():
            return _update(cmd, org, _member(org, cmd.member_id))
        case RemoveMember():
            member = _member(org, cmd.member_id)
            check_if_match(cmd.if_match, member.etag)
            return [OrganizationMembershipDeleted(
                org_id=org.id, issuer_id=org.issuer_id, member_id=member.member_id,
                member_type=member.member_type, deleted_at=cmd.now)]  # fmt: skip
        case DropDepartedMember():
            return drop_departed(cmd, org)
    raise AssertionError(f"unhandled command {cmd!r}")


def drop_departed(cmd: DropDepartedMember, state: Organization) -> list[Event]:
    """The membership of a member that no longer exists. A `deleting` organization is left to
    its cascade, which removes every membership with `organization.deleted`."""
    if not isinstance(state, Org) or state.status == "deleting":
        return []
    member = state.members.get(cmd.member_id)
    if member is None:
        return []
    return [OrganizationMembershipDeleted(
        org_id=state.id, issuer_id=state.issuer_id, member_id=member.member_id,
        member_type=member.member_type, deleted_at=cmd.now)]  # fmt: skip


def _member(org: Org, member_id: str) -> Member:
    member = org.members.get(member_id)
    if member is None:
        raise NotFound("no such member in this organization", reason="membership.not_found")
    return member


def _add(cmd: AddMember, org: Org) -> list[Event]:
    if cmd.member_id in org.members:
        raise Conflict("already a member of this organization", reason="membership.exists")
    limit = org.profile.max_members
    if limit is not None and len(org.members) >= limit:
        raise _invalid("member_id", "max_members", f"the organization allows {limit} members")
    scopes = org.profile.default_member_scopes if cmd.scopes is UNSET else cmd.scopes
    _check_references(org, scopes, cmd.groups)
    return [OrganizationMembershipCreated(
        org_id=org.id, issuer_id=org.issuer_id, member_id=cmd.member_id,
        member_type=cmd.member_type, scopes=list(scopes), groups=list(cmd.groups),
        user_title=cmd.user_title, metadata=cmd.metadata, joined_at=cmd.now)]  # fmt: skip


def _update(cmd: UpdateMember, org: Org, member: Member) -> list[Event]:
    check_if_match(cmd.if_match, member.etag)
    after = msgspec.structs.replace(
        member,
        status=member.status if cmd.status is UNSET else cmd.status,
        scopes=member.scopes if cmd.scopes is UNSET else cmd.scopes,
        groups=member.groups if cmd.groups is UNSET else cmd.groups,
        user_title=member.user_title if cmd.user_title is UNSET else cmd.user_title,
        metadata=merge_metadata(member.metadata, cmd.metadata),
    )
    changed = [f for f in _FIELDS if getattr(after, f) != getattr(member, f)]
    if not changed:
        return []
    _check_references(org, after.scopes, after.groups)
    status_moved = "status" in changed
    return [OrganizationMembershipUpdated(
        org_id=org.id, issuer_id=org.issuer_id, member_id=member.member_id,
        member_type=member.member_type, status=after.status,
        status_reason=cmd.status_reason if status_moved else member.status_reason,
        status_by=cmd.status_by if status_moved else member.status_by,
        scopes=after.scopes, groups=after.groups, user_title=after.user_title,
        metadata=after.metadata, changed=changed,
        updated_at=strictly_after(cmd.now, member.updated_at or member.joined_at))]  # fmt: skip


def _check_references(org: Org, scopes: list[str], groups: list[str]) -> None:
    vocabulary = org.profile.scopes
    if vocabulary and (unknown := [s for s in scopes if s not in vocabulary]):
        raise _invalid("scopes", "unknown_scope", f"not scopes of the organization: {unknown}")
    if missing := [g for g in groups if g not in org.groups]:
        raise _invalid("groups", "unknown_group", f"no such groups in the organization: {missing}")


def _invalid(field: str, code: str, message: str) -> Unprocessable:
    problem = FieldProblem(field=field, code=code, message=message)
    return Unprocessable(message, reason=f"membership.{code}", fields=[problem])


def evolve(org: Org, event: Event) -> Org:
    members = dict(org.members)
    match event:
        case OrganizationMembershipCreated() | OrganizationMembershipUpdated():
            previous = members.get(event.member_id)
            members[event.member_id] = Member(
                member_id=event.member_id, member_type=event.member_type, status=event.status,
                status_reason=event.status_reason, status_by=event.status_by,
                scopes=event.scopes, groups=event.groups, user_title=event.user_title,
                metadata=event.metadata,
                joined_at=previous.joined_at if previous else getattr(event, "joined_at", 0),
                updated_at=getattr(event, "updated_at", None),
            )  # fmt: skip
        case OrganizationMembershipDeleted():
            members.pop(event.member_id, None)
        case _:
            pass
    return msgspec.structs.replace(org, members=members)
