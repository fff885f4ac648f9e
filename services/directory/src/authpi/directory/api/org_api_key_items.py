"""Per-key operations on organization-level API keys, below their organization (core-api.md 3.4:
the optional aliases `I/organizations/{org_id}/api-keys/{key_id}[/block|unblock|revoke|rotate]`,
plus get, update and delete). The key is the same aggregate the account-level routes manage; an
alias only adds that the key belongs to this organization of this issuer (404 otherwise, as for
any path id under another parent, 3.0) and that the organization is live. Scopes
`issuers.organizations.api-keys:read|write|delete` (no `manage` exists for them: rotation is a
write)."""

from __future__ import annotations

import msgspec
from litestar import Response, Router, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from authpi.directory.api.api_keys import (
    ApiKeyOut,
    ApiKeyStatusBody,
    ApiKeyWithSecret,
    RotateApiKeyBody,
    UpdateApiKeyBody,
    apply_update,
    check_org_scopes,
    current_key,
    key_response,
    key_row,
    key_with_secret,
    known_form,
    status_change,
)
from authpi.directory.api.organization_common import ORG, live_ref
from authpi.directory.handlers.accounts import Directory
from authpi.directory.handlers.organizations import Organizations
from authpi.directory.queries.accounts import KeyRow
from authpi.errors import NotFound
from authpi.web.core import provide
from authpi.web.envelopes import One, no_content
from authpi.web.guards import require_scope
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal

KEY = ORG + "/api-keys/{key_id:str}"
TAGS = ["Organization API keys"]
READ = "issuers.organizations.api-keys:read"
WRITE = "issuers.organizations.api-keys:write"
DELETE = "issuers.organizations.api-keys:delete"


class OrgKeyPath(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    issuer_id: str
    org_id: str
    key_id: str


async def _org_key(directory: Directory, organizations: Organizations, path: OrgKeyPath) -> KeyRow:
    """The key, if it is one of this organization's (of this issuer, in this account)."""
    ref = await live_ref(organizations, path.account_id, path.issuer_id, path.org_id)
    row = await key_row(directory, path.account_id, known_form(path.key_id))
    if row.org_id != ref.org_id or row.issuer_id != ref.issuer_id:
        raise NotFound("no such API key in this organization", reason="api_key.other_org")
    return row


@get(KEY, operation_id="getOrganizationApiKey", summary="Get API Key (organization)", tags=TAGS,
     guards=[require_scope(READ)])  # fmt: skip
async def get_org_api_key(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    key_id: FromPath[str], directory: NamedDependency[Directory],
    organizations: NamedDependency[Organizations],
) -> Response[One[ApiKeyOut]]:  # fmt: skip
    path = OrgKeyPath(account_id=account_id, issuer_id=issuer_id, org_id=org_id, key_id=key_id)
    return key_response(await _org_key(directory, organizations, path))


@patch(KEY, operation_id="updateOrganizationApiKey", summary="Update API Key (organization)",
       tags=TAGS, guards=[require_scope(WRITE)])  # fmt: skip
async def update_org_api_key(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    key_id: FromPath[str], data: JSONBody[UpdateApiKeyBody], principal: InjectedPrincipal,
    directory: NamedDependency[Directory], organizations: NamedDependency[Organizations],
    if_match: IfMatch = None,
) -> Response[One[ApiKeyOut]]:  # fmt: skip
    path = OrgKeyPath(account_id=account_id, issuer_id=issuer_id, org_id=org_id, key_id=key_id)
    row = await _org_key(directory, organizations, path)
    await apply_update(directory, account_id, row, data, principal, if_match, check_org_scopes)
    return await current_key(directory, account_id, key_id)


@delete(KEY, operation_id="deleteOrganizationApiKey", summary="Delete API Key (organization)",
        tags=TAGS, guards=[require_scope(DELETE)])  # fmt: skip
async def delete_org_api_key(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    key_id: FromPath[str], principal: InjectedPrincipal, directory: NamedDependency[Directory],
    organizations: NamedDependency[Organizations], if_match: IfMatch = None,
) -> Response[None]:  # fmt: skip
    path = OrgKeyPath(account_id=account_id, issuer_id=issuer_id, org_id=org_id, key_id=key_id)
    row = await _org_key(directory, organizations, path)
    await directory.delete_api_key(
        account_id, row.id, actor=principal.actor(), if_match=if_match, held=principal.scopes
    )
    return no_content()


@post(KEY + "/block", operation_id="blockOrganizationApiKey",
      summary="Block API Key (organization)", tags=TAGS, guards=[require_scope(WRITE)],
      status_code=200)  # fmt: skip
async def block_org_api_key(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    key_id: FromPath[str], principal: InjectedPrincipal, directory: NamedDependency[Directory],
    organizations: NamedDependency[Organizations], if_match: IfMatch = None,
    data: JSONBody[ApiKeyStatusBody | None] = None,
) -> Response[One[ApiKeyOut]]:  # fmt: skip
    path = OrgKeyPath(account_id=account_id, issuer_id=issuer_id, org_id=org_id, key_id=key_id)
    change = status_change(data, if_match)
    row = await _org_key(directory, organizations, path)
    await directory.block_api_key(
        account_id, row.id, actor=principal.actor(), change=change, held=principal.scopes
    )
    return await current_key(directory, account_id, key_id)


@post(KEY + "/unblock", operation_id="unblockOrganizationApiKey",
      summary="Unblock API Key (organization)", tags=TAGS, guards=[require_scope(WRITE)],
      status_code=200)  # fmt: skip
async def unblock_org_api_key(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    key_id: FromPath[str], principal: InjectedPrincipal, directory: NamedDependency[Directory],
    organizations: NamedDependency[Organizations], if_match: IfMatch = None,
) -> Response[One[ApiKeyOut]]:  # fmt: skip
    path = OrgKeyPath(account_id=account_id, issuer_id=issuer_id, org_id=org_id, key_id=key_id)
    row = await _org_key(directory, organizations, path)
    await directory.unblock_api_key(
        account_id, row.id, actor=principal.actor(), if_match=if_match, held=principal.scopes
    )
    return await current_key(directory, account_id, key_id)


@post(KEY + "/revoke", operation_id="revokeOrganizationApiKey",
      summary="Revoke API Key (organization)", tags=TAGS, guards=[require_scope(WRITE)],
      status_code=200)  # fmt: skip
async def revoke_org_api_key(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    key_id: FromPath[str], principal: InjectedPrincipal, directory: NamedDependency[Directory],
    organizations: NamedDependency[Organizations], if_match: IfMatch = None,
    data: JSONBody[ApiKeyStatusBody | None] = None,
) -> Response[One[ApiKeyOut]]:  # fmt: skip
    path = OrgKeyPath(account_id=account_id, issuer_id=issuer_id, org_id=org_id, key_id=key_id)
    change = status_change(data, if_match)
    row = await _org_key(directory, organizations, path)
    await directory.revoke_api_key(
        account_id, row.id, actor=principal.actor(), change=change, held=principal.scopes
    )
    return await current_key(directory, account_id, key_id)


@post(KEY + "/rotate", operation_id="rotateOrganizationApiKey",
      summary="Rotate API Key Secret (organization)", tags=TAGS, guards=[require_scope(WRITE)],
      status_code=200)  # fmt: skip
async def rotate_org_api_key(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    key_id: FromPath[str], principal: InjectedPrincipal, directory: NamedDependency[Directory],
    organizations: NamedDependency[Organizations], if_match: IfMatch = None,
    data: JSONBody[RotateApiKeyBody | None] = None,
) -> Response[One[ApiKeyWithSecret]]:  # fmt: skip
    path = OrgKeyPath(account_id=account_id, issuer_id=issuer_id, org_id=org_id, key_id=key_id)
    row = await _org_key(directory, organizations, path)
    rotated = await directory.rotate_api_key(
        account_id, row.id, actor=principal.actor(), if_match=if_match, held=principal.scopes
    )
    return await key_with_secret(directory, account_id, row.id, rotated.secret)


def org_api_key_items_router(directory: Directory, organizations: Organizations) -> Router:
    return Router(
        "/",
        route_handlers=[
            get_org_api_key, update_org_api_key, delete_org_api_key, block_org_api_key,
            unblock_org_api_key, revoke_org_api_key, rotate_org_api_key,
        ],
        dependencies={"directory": provide(directory), "organizations": provide(organizations)},
    )  # fmt: skip
