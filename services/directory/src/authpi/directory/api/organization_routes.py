"""The router of organizations, their members, groups and organization-level API keys, with the
handler they share as the `organizations` dependency."""

from __future__ import annotations

from litestar import Router

from authpi.directory.api import org_api_keys, org_groups, org_members, org_sso, organizations
from authpi.directory.handlers.org_sso import OrganizationSso
from authpi.directory.handlers.organizations import Organizations
from authpi.web.core import provide


def organizations_router(orgs: Organizations, sso: OrganizationSso) -> Router:
    handlers = [*organizations.ROUTES, *org_members.ROUTES, *org_groups.ROUTES,
                *org_api_keys.ROUTES, *org_sso.ROUTES]  # fmt: skip
    dependencies = {"organizations": provide(orgs), "organization_sso": provide(sso)}
    return Router("/", route_handlers=handlers, dependencies=dependencies)
