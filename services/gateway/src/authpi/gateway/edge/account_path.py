"""The `{account_id}` path check (core-api.md 1.2 rule 7), run for every Core API route after
authentication: a credential acts only on its own account (a user token: on the accounts of its
memberships, with that membership's scopes), 403 `access_denied` otherwise, 404 `not_found` when
no such account exists at all; an organization-level API key acts only below its own
organization (`{org_id}`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authpi.errors import AccessDenied, NotFound
from authpi.gateway.caches.accounts import AccountLookup
from authpi.web.principal import Principal


async def check_account_path(
    principal: Principal, path_params: Mapping[str, Any], accounts: AccountLookup
) -> Principal:
    """The principal acting on the path's account (a user token bound to its membership there),
    or the principal itself on a route without `{account_id}`."""
    account_id = path_params.get("account_id")
    if account_id is None:
        return principal
    bound = principal.on_account(str(account_id))
    if bound is None:
        if await accounts.exists(str(account_id)):
            raise AccessDenied(
                "this credential may not act on that account", reason="auth.foreign_account"
            )
        raise NotFound("no such account", reason="auth.unknown_account")
    if bound.level == "organization" and path_params.get("org_id") != bound.org_id:
        raise AccessDenied(
            "an organization-level API key acts only on its own organization",
            reason="auth.outside_organization",
        )
    return bound
