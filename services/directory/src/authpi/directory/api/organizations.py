"""Organizations over HTTP (core-api.md 3.12, contract 4.18): list with filters, create, get,
update (also suspend/reactivate) and delete (the crash-safe cascade of the handler). Scopes
`issuers.organizations:read|write`. A deleted or deleting organization is a 404."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import UNSET, UnsetType

from authpi.directory.api.organization_common import (
    ORG,
    I,
    check_body,
    check_id,
    choice,
    flag,
    live_organization,
    org_ref,
    present,
)
from authpi.directory.api.organization_models import (
    CreateOrganizationBody,
    Organization,
    OrganizationListItem,
    UpdateOrganizationBody,
)
from authpi.directory.domain.commands.organization import (
    PROFILE_FIELDS,
    Profile,
    UpdateOrganization,
)
from authpi.directory.handlers.organizations import Organizations
from authpi.directory.queries.organizations import OrgFilters
from authpi.errors import FieldProblem, Unprocessable
from authpi.web.envelopes import One, Page, no_content, one
from authpi.web.etag import etag_of
from authpi.web.guards import require_scope
from authpi.web.pagination import InjectedPage, paginate
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal

COLLECTION = "organizations"
_OBJECTS = ("business_details", "contact", "security", "custom_fields", "metadata")
READ = [require_scope("issuers.organizations:read")]
WRITE = [require_scope("issuers.organizations:write")]
# `:delete`, never `:write`, on every DELETE route (core-api.md 5.1).
DELETE = [require_scope("issuers.organizations:delete")]


def _profile_values(body: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """The profile fields the body names, as builtins; the `sso` object without its
    `client_secret` (which `_sso_secret` hands to the handler, to be wrapped)."""
    values = present(body, fields)
    if "address" in values and values["address"] is not None:
        values["address"] = msgspec.to_builtins(values["address"])
    if "sso" in values:
        sso = msgspec.to_builtins(values["sso"])  # UNSET fields are left out
        sso.pop("client_secret", None)
        values["sso"] = sso
    return values


def _sso_secret(body: CreateOrganizationBody | UpdateOrganizationBody) -> str | UnsetType | None:
    return UNSET if isinstance(body.sso, UnsetType) else body.sso.client_secret


def check_security(security: Any) -> None:
    """`security.mfa_required` (core-api.md 3.12), when given, is a boolean: the token service
    requires a second factor of the organization's members on it."""
    value = security.get("mfa_required") if isinstance(security, dict) else None
    if value is not None and not isinstance(value, bool):
        problem = FieldProblem(
            field="security.mfa_required", code="invalid_type", message="must be a boolean"
        )
        raise Unprocessable(
            "security.mfa_required must be a boolean", reason="organization.security",
            fields=[problem],
        )  # fmt: skip


def respond(org: Organization, status: int = 200) -> Response[One[Organization]]:
    return one(org, etag=etag_of(org.created_at, org.updated_at), status=status)


@get(I + "/organizations", operation_id="listOrganizations", summary="List Organizations",
     tags=["Organizations"], guards=READ)  # fmt: skip
async def list_organizations(
    account_id: FromPath[str], issuer_id: FromPath[str], page: InjectedPage,
    organizations: NamedDependency[Organizations],
    status: FromQuery[str | None] = None, sso_enabled: FromQuery[str | None] = None,
    sso_only: FromQuery[str | None] = None, mfa_required: FromQuery[str | None] = None,
    invitation_enabled: FromQuery[str | None] = None,
) -> Page[OrganizationListItem]:  # fmt: skip
    filters = OrgFilters(
        status=choice("status", status, ("active", "suspended", "deleted")),
        sso_enabled=flag("sso_enabled", sso_enabled), sso_only=flag("sso_only", sso_only),
        mfa_required=flag("mfa_required", mfa_required),
        invitation_enabled=flag("invitation_enabled", invitation_enabled),
    )  # fmt: skip
    await organizations.require_issuer(account_id, check_id(issuer_id, "issuer"))
    after = page.after(COLLECTION)
    async with organizations.rt.pool.connection() as conn:
        rows = await organizations.queries.organizations(
            conn, account_id, issuer_id, filters, after, page.fetch_limit
        )
    return paginate(rows, page, COLLECTION, lambda o: (o.created_at, o.id))


@post(I + "/organizations", operation_id="createOrganization", summary="Create Organization",
      tags=["Organizations"], guards=WRITE)  # fmt: skip
async def create_organization(
    account_id: FromPath[str], issuer_id: FromPath[str], principal: InjectedPrincipal,
    organizations: NamedDependency[Organizations], data: JSONBody[CreateOrganizationBody],
) -> Response[One[Organization]]:  # fmt: skip
    check_body(data, _OBJECTS)
    check_security(data.security)
    profile = Profile(**_profile_values(data, PROFILE_FIELDS))
    org_id = await organizations.create(
        account_id, check_id(issuer_id, "issuer"), profile, actor=principal.actor(),
        by_user_id=data.by_user_id, sso_secret=_sso_secret(data),
    )  # fmt: skip
    org = await live_organization(organizations, org_ref(account_id, issuer_id, org_id))
    return respond(org, status=201)


@get(ORG, operation_id="getOrganization", summary="Get Organization", tags=["Organizations"],
     guards=READ)  # fmt: skip
async def get_organization(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    organizations: NamedDependency[Organizations],
) -> Response[One[Organization]]:  # fmt: skip
    org = await live_organization(organizations, org_ref(account_id, issuer_id, org_id))
    return respond(org)


@patch(ORG, operation_id="updateOrganization", summary="Update Organization",
       tags=["Organizations"], guards=WRITE)  # fmt: skip
async def update_organization(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    principal: InjectedPrincipal, organizations: NamedDependency[Organizations],
    data: JSONBody[UpdateOrganizationBody], if_match: IfMatch = None,
) -> Response[One[Organization]]:  # fmt: skip
    check_body(data, _OBJECTS)
    check_security(data.security)
    ref = org_ref(account_id, issuer_id, org_id)
    cmd = UpdateOrganization(
        ref=ref, now=0, changes=_profile_values(data, PROFILE_FIELDS), status=data.status,
        status_reason=data.status_reason, status_by=data.status_by, if_match=if_match,
    )  # fmt: skip
    await organizations.update(cmd, principal.actor(), sso_secret=_sso_secret(data))
    return respond(await live_organization(organizations, ref))


@delete(ORG, operation_id="deleteOrganization", summary="Delete Organization",
        tags=["Organizations"], guards=DELETE, status_code=204)  # fmt: skip
async def delete_organization(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    principal: InjectedPrincipal, organizations: NamedDependency[Organizations],
    if_match: IfMatch = None,
) -> Response[None]:  # fmt: skip
    ref = org_ref(account_id, issuer_id, org_id)
    await organizations.delete(ref, actor=principal.actor(), if_match=if_match)
    return no_content()


ROUTES = [
    list_organizations,
    create_organization,
    get_organization,
    update_organization,
    delete_organization,
]
