"""Organization groups over HTTP (core-api.md 3.14, contract 4.27): list, create, get, update and
delete (which also removes the group from memberships). Scopes
`issuers.organizations.groups:read|write`."""

from __future__ import annotations

from litestar import Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from authpi.directory.api.organization_common import ORG, check_body, check_id, live_ref, org_ref
from authpi.directory.api.organization_models import CreateGroupBody, Group, UpdateGroupBody
from authpi.directory.domain.commands.organization import CreateGroup, DeleteGroup, UpdateGroup
from authpi.directory.handlers.organizations import Organizations
from authpi.errors import NotFound
from authpi.web.envelopes import One, Page, no_content, one
from authpi.web.etag import etag_of
from authpi.web.guards import require_scope
from authpi.web.pagination import InjectedPage, paginate
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal

COLLECTION = "groups"
GROUPS = ORG + "/groups"
GROUP = GROUPS + "/{group_id:str}"
READ = [require_scope("issuers.organizations.groups:read")]
WRITE = [require_scope("issuers.organizations.groups:write")]
# `:delete`, never `:write`, on every DELETE route (core-api.md 5.1).
DELETE = [require_scope("issuers.organizations.groups:delete")]
TAGS = ["Organization groups"]


async def _group(orgs: Organizations, org_id: str, group_id: str) -> Group:
    async with orgs.rt.pool.connection() as conn:
        found = await orgs.queries.group(conn, org_id, group_id)
    if found is None:
        raise NotFound("no such group in this organization", reason="group.not_found")
    return found


def _respond(g: Group, status: int = 200) -> Response[One[Group]]:
    return one(g, etag=etag_of(g.created_at, g.updated_at), status=status)


@get(GROUPS, operation_id="listOrganizationGroups", summary="List Organization Groups",
     tags=TAGS, guards=READ)  # fmt: skip
async def list_groups(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    page: InjectedPage, organizations: NamedDependency[Organizations],
) -> Page[Group]:  # fmt: skip
    ref = await live_ref(organizations, account_id, issuer_id, org_id)
    after = page.after(COLLECTION)
    async with organizations.rt.pool.connection() as conn:
        rows = await organizations.queries.groups(conn, ref.org_id, after, page.fetch_limit)
    return paginate(rows, page, COLLECTION, lambda g: (g.created_at, g.id))


@post(GROUPS, operation_id="createOrganizationGroup", summary="Create Organization Group",
      tags=TAGS, guards=WRITE)  # fmt: skip
async def create_group(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    principal: InjectedPrincipal, organizations: NamedDependency[Organizations],
    data: JSONBody[CreateGroupBody],
) -> Response[One[Group]]:  # fmt: skip
    check_body(data)
    ref = org_ref(account_id, issuer_id, org_id)
    cmd = CreateGroup(
        ref=ref, group_id="", name=data.name, now=0, description=data.description,
        scopes=data.scopes, metadata=data.metadata,
    )  # fmt: skip
    group_id = await organizations.create_group(cmd, principal.actor())
    return _respond(await _group(organizations, ref.org_id, group_id), status=201)


@get(GROUP, operation_id="getOrganizationGroup", summary="Get Organization Group", tags=TAGS,
     guards=READ)  # fmt: skip
async def get_group(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    group_id: FromPath[str], organizations: NamedDependency[Organizations],
) -> Response[One[Group]]:  # fmt: skip
    ref = await live_ref(organizations, account_id, issuer_id, org_id)
    return _respond(await _group(organizations, ref.org_id, check_id(group_id, "group")))


@patch(GROUP, operation_id="updateOrganizationGroup", summary="Update Organization Group",
       tags=TAGS, guards=WRITE)  # fmt: skip
async def update_group(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    group_id: FromPath[str], principal: InjectedPrincipal,
    organizations: NamedDependency[Organizations], data: JSONBody[UpdateGroupBody],
    if_match: IfMatch = None,
) -> Response[One[Group]]:  # fmt: skip
    check_body(data)
    ref = org_ref(account_id, issuer_id, org_id)
    cmd = UpdateGroup(
        ref=ref, group_id=check_id(group_id, "group"), now=0, name=data.name,
        description=data.description, scopes=data.scopes, metadata=data.metadata,
        if_match=if_match,
    )  # fmt: skip
    await organizations.update_group(cmd, principal.actor())
    return _respond(await _group(organizations, ref.org_id, group_id))


@delete(GROUP, operation_id="deleteOrganizationGroup", summary="Delete Organization Group",
        tags=TAGS, guards=DELETE, status_code=204)  # fmt: skip
async def delete_group(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    group_id: FromPath[str], principal: InjectedPrincipal,
    organizations: NamedDependency[Organizations], if_match: IfMatch = None,
) -> Response[None]:  # fmt: skip
    ref = org_ref(account_id, issuer_id, org_id)
    cmd = DeleteGroup(ref=ref, group_id=check_id(group_id, "group"), now=0, if_match=if_match)
    await organizations.delete_group(cmd, principal.actor())
    return no_content()


ROUTES = [list_groups, create_group, get_group, update_group, delete_group]
