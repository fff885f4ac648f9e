"""Organization members over HTTP (core-api.md 3.13, contract 4.29): list (filters `status`,
`scope`), add, get (rec.), update and remove. Scopes `issuers.organizations.members:read|write`.
A member's `member_type` is inferred from its id's prefix when absent."""

from __future__ import annotations

from typing import Annotated, TypeAlias

import msgspec
from litestar import Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from authpi.directory.api.organization_common import (
    ORG,
    check_body,
    check_id,
    choice,
    live_organization,
    live_ref,
    org_ref,
    text_query,
)
from authpi.directory.api.organization_models import AddMemberBody, Membership, UpdateMemberBody
from authpi.directory.domain.commands.organization import AddMember, RemoveMember, UpdateMember
from authpi.directory.domain.org_members import member_type_of
from authpi.directory.handlers.organizations import Organizations
from authpi.errors import NotFound
from authpi.web.envelopes import One, Page, no_content, one
from authpi.web.etag import etag_of
from authpi.web.guards import require_scope
from authpi.web.pagination import InjectedPage, paginate
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal

COLLECTION = "members"
MEMBERS = ORG + "/members"
MEMBER = MEMBERS + "/{member_id:str}"
READ = [require_scope("issuers.organizations.members:read")]
WRITE = [require_scope("issuers.organizations.members:write")]
# `:delete`, never `:write`, on every DELETE route (core-api.md 5.1).
DELETE = [require_scope("issuers.organizations.members:delete")]
TAGS = ["Organization members"]
# `scope` is a reserved handler argument name in litestar: the query parameter is renamed.
ScopeQuery: TypeAlias = Annotated[str | None, QueryParameter(name="scope")]


async def _membership(orgs: Organizations, org_id: str, member_id: str) -> Membership:
    async with orgs.rt.pool.connection() as conn:
        found = await orgs.queries.member(conn, org_id, member_id)
    if found is None:
        raise NotFound("no such member in this organization", reason="membership.not_found")
    return found


def _respond(m: Membership, status: int = 200) -> Response[One[Membership]]:
    return one(m, etag=etag_of(m.joined_at, m.updated_at), status=status)


@get(MEMBERS, operation_id="listOrganizationMembers", summary="List Organization Members",
     tags=TAGS, guards=READ)  # fmt: skip
async def list_members(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    page: InjectedPage, organizations: NamedDependency[Organizations],
    status: FromQuery[str | None] = None, scope_filter: ScopeQuery = None,
) -> Page[Membership]:  # fmt: skip
    status = choice("status", status, ("active", "suspended"))
    scope = text_query("scope", scope_filter)
    ref = await live_ref(organizations, account_id, issuer_id, org_id)
    after = page.after(COLLECTION)
    async with organizations.rt.pool.connection() as conn:
        rows = await organizations.queries.members(
            conn, ref.org_id, status, scope, after, page.fetch_limit
        )
    return paginate(rows, page, COLLECTION, lambda m: (m.joined_at, m.member_id))


@post(MEMBERS, operation_id="addOrganizationMember", summary="Add Organization Member",
      tags=TAGS, guards=WRITE)  # fmt: skip
async def add_member(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    principal: InjectedPrincipal, organizations: NamedDependency[Organizations],
    data: JSONBody[AddMemberBody],
) -> Response[One[Membership]]:  # fmt: skip
    check_body(data)
    ref = org_ref(account_id, issuer_id, org_id)
    member_type = data.member_type
    if member_type is msgspec.UNSET:
        member_type = member_type_of(data.member_id)
    cmd = AddMember(
        ref=ref, member_id=data.member_id, member_type=member_type, now=0, scopes=data.scopes,
        groups=data.groups, user_title=data.user_title, metadata=data.metadata,
    )  # fmt: skip
    await live_organization(organizations, ref)
    await organizations.add_member(cmd, principal.actor())
    return _respond(await _membership(organizations, ref.org_id, data.member_id), status=201)


@get(MEMBER, operation_id="getOrganizationMember", summary="Get Organization Member",
     tags=TAGS, guards=READ)  # fmt: skip
async def get_member(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    member_id: FromPath[str], organizations: NamedDependency[Organizations],
) -> Response[One[Membership]]:  # fmt: skip
    ref = await live_ref(organizations, account_id, issuer_id, org_id)
    return _respond(await _membership(organizations, ref.org_id, check_id(member_id, "member")))


@patch(MEMBER, operation_id="updateOrganizationMember", summary="Update Organization Member",
       tags=TAGS, guards=WRITE)  # fmt: skip
async def update_member(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    member_id: FromPath[str], principal: InjectedPrincipal,
    organizations: NamedDependency[Organizations], data: JSONBody[UpdateMemberBody],
    if_match: IfMatch = None,
) -> Response[One[Membership]]:  # fmt: skip
    check_body(data)
    ref = org_ref(account_id, issuer_id, org_id)
    cmd = UpdateMember(
        ref=ref, member_id=check_id(member_id, "member"), now=0, scopes=data.scopes,
        groups=data.groups, user_title=data.user_title, metadata=data.metadata,
        status=data.status, status_reason=data.status_reason, status_by=data.status_by,
        if_match=if_match,
    )  # fmt: skip
    await organizations.update_member(cmd, principal.actor())
    return _respond(await _membership(organizations, ref.org_id, member_id))


@delete(MEMBER, operation_id="removeOrganizationMember", summary="Remove Organization Member",
        tags=TAGS, guards=DELETE, status_code=204)  # fmt: skip
async def remove_member(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    member_id: FromPath[str], principal: InjectedPrincipal,
    organizations: NamedDependency[Organizations], if_match: IfMatch = None,
) -> Response[None]:  # fmt: skip
    ref = org_ref(account_id, issuer_id, org_id)
    cmd = RemoveMember(ref=ref, member_id=check_id(member_id, "member"), now=0, if_match=if_match)
    await organizations.remove_member(cmd, principal.actor())
    return no_content()


ROUTES = [list_members, add_member, get_member, update_member, remove_member]
