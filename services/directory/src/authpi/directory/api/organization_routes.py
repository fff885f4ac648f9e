"""The router of organizations, their members, groups and organization-level API keys, with the
handler they share as the `organizations` dependency."""

from __future__ import annotations

from litestar import Router

from authpi.directory.api import org_api_keys, org_groups, org_members, organizations
from authpi.directory.handlers.organizations import Organizations
from authpi.web.core import provide


def organizations_router(orgs: Organizations) -> Router:
    handlers = [*organizations.ROUTES, *org_members.ROUTES, *org_groups.ROUTES,
                *org_api_keys.ROUTES]  # fmt: skip
    return Router("/", route_handlers=handlers, dependencies={"organizations": provide(orgs)})
