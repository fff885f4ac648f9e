"""Groups of an organization (core-api.md 3.14): named scope bundles. Deleting a group also
removes it from every membership that listed it (one `organization.group.deleted`)."""

from __future__ import annotations

import msgspec
from msgspec import UNSET

from authpi.contracts.base import Event
from authpi.contracts.directory import (
    OrganizationGroupCreated,
    OrganizationGroupDeleted,
    OrganizationGroupUpdated,
)
from authpi.directory.domain.commands.organization import CreateGroup, DeleteGroup, UpdateGroup
from authpi.directory.domain.organization_state import Group, Org
from authpi.errors import Conflict, NotFound
from authpi.web.etag import check_if_match, strictly_after
from authpi.web.metadata import merge_metadata

_FIELDS = ("name", "description", "scopes", "metadata")

GroupCommand = CreateGroup | UpdateGroup | DeleteGroup


def decide(cmd: GroupCommand, org: Org) -> list[Event]:
    match cmd:
        case CreateGroup():
            if cmd.group_id in org.groups:
                raise Conflict("the group already exists", reason="group.exists")
            return [OrganizationGroupCreated(
                id=cmd.group_id, org_id=org.id, issuer_id=org.issuer_id, name=cmd.name,
                description=cmd.description, scopes=cmd.scopes, metadata=cmd.metadata,
                created_at=cmd.now)]  # fmt: skip
        case UpdateGroup():
            return _update(cmd, org, _group(org, cmd.group_id))
        case DeleteGroup():
            group = _group(org, cmd.group_id)
            check_if_match(cmd.if_match, group.etag)
            deleted = OrganizationGroupDeleted(
                id=group.id, org_id=org.id, issuer_id=org.issuer_id, deleted_at=cmd.now
            )
            return [deleted]
    raise AssertionError(f"unhandled command {cmd!r}")


def _group(org: Org, group_id: str) -> Group:
    group = org.groups.get(group_id)
    if group is None:
        raise NotFound("no such group in this organization", reason="group.not_found")
    return group


def _update(cmd: UpdateGroup, org: Org, group: Group) -> list[Event]:
    check_if_match(cmd.if_match, group.etag)
    after = msgspec.structs.replace(
        group,
        name=group.name if cmd.name is UNSET else cmd.name,
        description=group.description if cmd.description is UNSET else cmd.description,
        scopes=group.scopes if cmd.scopes is UNSET else cmd.scopes,
        metadata=merge_metadata(group.metadata, cmd.metadata),
    )
    changed = [f for f in _FIELDS if getattr(after, f) != getattr(group, f)]
    if not changed:
        return []
    return [OrganizationGroupUpdated(
        id=group.id, org_id=org.id, issuer_id=org.issuer_id, name=after.name,
        description=after.description, scopes=after.scopes, metadata=after.metadata,
        changed=changed,
        updated_at=strictly_after(cmd.now, group.updated_at or group.created_at))]  # fmt: skip


def evolve(org: Org, event: Event) -> Org:
    groups = dict(org.groups)
    match event:
        case OrganizationGroupCreated():
            groups[event.id] = Group(
                id=event.id, name=event.name, description=event.description,
                scopes=event.scopes, metadata=event.metadata, created_at=event.created_at,
            )  # fmt: skip
        case OrganizationGroupUpdated():
            groups[event.id] = Group(
                id=event.id, name=event.name, description=event.description,
                scopes=event.scopes, metadata=event.metadata,
                created_at=groups[event.id].created_at, updated_at=event.updated_at,
            )  # fmt: skip
        case OrganizationGroupDeleted():
            groups.pop(event.id, None)
            members = {
                k: msgspec.structs.replace(m, groups=[g for g in m.groups if g != event.id])
                for k, m in org.members.items()
            }
            return msgspec.structs.replace(org, groups=groups, members=members)
        case _:
            pass  # other events leave the groups as they are
    return msgspec.structs.replace(org, groups=groups)
