"""The `{account_id}` path check (core-api.md 1.2 rule 7), run for every Core API route after
authentication: a credential acts only on its own account (403 `access_denied` otherwise, 404
`not_found` when no such account exists at all); an organization-level API key acts only below
its own organization (`{org_id}`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from authpi.errors import AccessDenied, NotFound
from authpi.web.principal import Principal


class AccountLookup:
    """Whether an account exists, read from the directory's accounts_view (asked only when a
    credential names an account other than its own)."""

    def __init__(self, pool: AsyncConnectionPool, source_schema: str) -> None:
        self._pool = pool
        self._exists = sql.SQL("SELECT 1 FROM {}.accounts_view WHERE id = %s").format(
            sql.Identifier(source_schema)
        )

    async def exists(self, account_id: str) -> bool:
        if not account_id.isprintable() or len(account_id) > 64:
            return False  # never a stored id; PostgreSQL refuses NUL in text anyway
        async with self._pool.connection() as conn:
            cur = await conn.execute(self._exists, [account_id])
            return await cur.fetchone() is not None


async def check_account_path(
    principal: Principal, path_params: Mapping[str, Any], accounts: AccountLookup
) -> None:
    account_id = path_params.get("account_id")
    if account_id is None:
        return
    if account_id != principal.account_id:
        if await accounts.exists(str(account_id)):
            raise AccessDenied(
                "this credential may not act on that account", reason="auth.foreign_account"
            )
        raise NotFound("no such account", reason="auth.unknown_account")
    if principal.level == "organization" and path_params.get("org_id") != principal.org_id:
        raise AccessDenied(
            "an organization-level API key acts only on its own organization",
            reason="auth.outside_organization",
        )
