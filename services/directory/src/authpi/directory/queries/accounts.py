"""Read-side SQL over accounts_view, account_domains_view, api_keys_view and users_view for the
Accounts, domain and API-key routes (core-api.md 3.2-3.4). A key's `expired` status is computed
here from `expires_at`; the list filters `q`, `status`, `access` and `readiness` follow
core-api.md 3.4's recommendations."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
from psycopg.rows import class_row

from authpi.eventstore.sqltext import render

# A key expiring within this window needs attention (core-api.md 3.4 `readiness`).
READY_HORIZON_MS = 14 * 24 * 3600 * 1000


class AccountBilling(msgspec.Struct, kw_only=True):
    """An account's balance (μUSD) and payment methods (their public objects), learnt from the
    billing service's events (reactions/billing.py)."""

    balance: int = 0
    payment_methods: list[dict[str, Any]] = msgspec.field(default_factory=list[dict[str, Any]])


class AccountRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    org_id: str
    name: str
    description: str | None
    logo_url: str | None
    owner_user_id: str | None
    metadata: dict[str, Any]
    created_at: int
    updated_at: int | None


class DomainRow(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    host: str
    verified: bool
    primary: bool
    added_at: int
    assigned_issuer_id: str | None
    assigned_at: int | None


class KeyRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    org_id: str
    issuer_id: str | None
    name: str
    description: str | None
    tags: list[str]
    scopes: list[str]
    ip_allowlist: list[str]
    expires_at: int | None
    metadata: dict[str, Any]
    status: str
    status_at: int | None
    status_reason: str | None
    status_by: str | None
    secret_hint: str
    last_rotated_at: int | None
    created_at: int
    updated_at: int | None


class KeyFilters(msgspec.Struct, frozen=True, kw_only=True):
    q: str | None = None
    status: str | None = None
    access: str | None = None
    readiness: str | None = None


_STATUS = (
    "CASE WHEN status <> 'revoked' AND expires_at IS NOT NULL AND expires_at <= %(now)s"
    " THEN 'expired' ELSE status END"
)
_ACCESS = (
    "CASE WHEN jsonb_array_length(scopes) = 0 THEN 'none'"
    " WHEN EXISTS (SELECT 1 FROM jsonb_array_elements_text(scopes) s"
    "  WHERE s LIKE '%%:write' OR s LIKE '%%:manage') THEN 'write'"
    " WHEN NOT EXISTS (SELECT 1 FROM jsonb_array_elements_text(scopes) s"
    "  WHERE s NOT LIKE '%%:read') THEN 'read'"
    " ELSE 'other' END"
)

_READINESS = (
    f"CASE WHEN ({_STATUS}) = 'active' AND jsonb_array_length(scopes) > 0"
    " AND (expires_at IS NULL OR expires_at > %(soon)s) THEN 'ready' ELSE 'attention' END"
)
_KEY_COLUMNS = (
    "id, org_id, issuer_id, name, description, tags, scopes, ip_allowlist, expires_at, metadata,"
    f" {_STATUS} AS status, status_at, status_reason, status_by, secret_hint, last_rotated_at,"
    " created_at, updated_at"
)
_ACCOUNT_COLUMNS = (
    "id, org_id, name, description, logo_url, owner_user_id, metadata, created_at, updated_at"
)


class AccountQueries:
    def __init__(self, schema: str) -> None:
        self._account = render(
            "SELECT " + _ACCOUNT_COLUMNS + " FROM {schema}.accounts_view WHERE id = %(id)s",
            schema=schema,
        )
        self._accounts = render(
            "SELECT " + _ACCOUNT_COLUMNS + " FROM {schema}.accounts_view WHERE id = ANY(%(ids)s)"
            " AND (%(after_at)s::bigint IS NULL OR (created_at, id) < (%(after_at)s,"
            " %(after_id)s::text)) ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
            schema=schema,
        )
        self._key = render(
            "SELECT " + _KEY_COLUMNS + " FROM {schema}.api_keys_view"
            " WHERE id = %(id)s AND account_id = %(account)s",
            schema=schema,
        )
        self._keys = render(
            "SELECT " + _KEY_COLUMNS + " FROM {schema}.api_keys_view WHERE account_id = %(account)s"
            " AND org_id = (SELECT org_id FROM {schema}.accounts_view WHERE id = %(account)s)"
            " AND (%(after_at)s::bigint IS NULL OR (created_at, id) < (%(after_at)s,"
            " %(after_id)s::text))"
            " AND (%(q)s::text IS NULL OR strpos(lower(name), lower(%(q)s)) > 0)"
            " AND (%(status)s::text IS NULL OR " + _STATUS + " = %(status)s)"
            " AND (%(access)s::text IS NULL OR " + _ACCESS + " = %(access)s)"
            " AND (%(readiness)s::text IS NULL OR " + _READINESS + " = %(readiness)s)"
            " ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
            schema=schema,
        )
        self._domains = render(
            "SELECT account_id, host, verified, is_primary AS primary, added_at,"
            " assigned_issuer_id, assigned_at FROM {schema}.account_domains_view"
            " WHERE account_id = ANY(%(ids)s) ORDER BY added_at, host",
            schema=schema,
        )
        self._domain = render(
            "SELECT account_id, host, verified, is_primary AS primary, added_at,"
            " assigned_issuer_id, assigned_at FROM {schema}.account_domains_view"
            " WHERE account_id = %(account)s AND host = %(host)s",
            schema=schema,
        )
        self._domain_owner = render(
            "SELECT account_id, host, verified, is_primary AS primary, added_at,"
            " assigned_issuer_id, assigned_at FROM {schema}.account_domains_view"
            " WHERE host = %(host)s",
            schema=schema,
        )
        self._issuer = render(
            "SELECT 1 FROM {schema}.issuers_view WHERE id = %(issuer)s"
            " AND account_id = %(account)s AND status <> 'deleted'",
            schema=schema,
        )
        self._balances = render(
            "SELECT account_id, balance FROM {schema}.account_billing_view"
            " WHERE account_id = ANY(%(ids)s)",
            schema=schema,
        )
        self._methods = render(
            "SELECT account_id, method FROM {schema}.account_payment_methods_view"
            " WHERE account_id = ANY(%(ids)s) ORDER BY created_at, id",
            schema=schema,
        )
        self._account_user = render(
            "SELECT 1 FROM {schema}.users_view WHERE id = %(user)s AND account_id = %(account)s"
            " AND issuer_id = %(issuer)s AND status <> 'deleted'",
            schema=schema,
        )

    async def billing(
        self, conn: psycopg.AsyncConnection[Any], account_ids: list[str]
    ) -> dict[str, AccountBilling]:
        """The billing fields of these accounts (directory-billing); absent: balance 0."""
        found = {a: AccountBilling() for a in account_ids}
        cur = await conn.execute(self._balances, {"ids": account_ids})
        for account_id, balance in await cur.fetchall():
            found[account_id].balance = int(balance)
        cur = await conn.execute(self._methods, {"ids": account_ids})
        for account_id, method in await cur.fetchall():
            found[account_id].payment_methods.append(method)
        return found

    async def account(self, conn: psycopg.AsyncConnection[Any], account_id: str) -> AccountRow:
        cur = conn.cursor(row_factory=class_row(AccountRow))
        await cur.execute(self._account, {"id": account_id})
        return await cur.fetchone()  # type: ignore[return-value]

    async def accounts(
        self,
        conn: psycopg.AsyncConnection[Any],
        ids: list[str],
        after: tuple[int, str] | None,
        limit: int,
    ) -> list[AccountRow]:
        after_at, after_id = after or (None, None)
        params = {"ids": ids, "after_at": after_at, "after_id": after_id, "limit": limit}
        cur = conn.cursor(row_factory=class_row(AccountRow))
        await cur.execute(self._accounts, params)
        return await cur.fetchall()

    async def domains(
        self, conn: psycopg.AsyncConnection[Any], account_ids: list[str]
    ) -> list[DomainRow]:
        """The domains of these accounts, oldest first."""
        cur = conn.cursor(row_factory=class_row(DomainRow))
        await cur.execute(self._domains, {"ids": account_ids})
        return await cur.fetchall()

    async def domain(
        self, conn: psycopg.AsyncConnection[Any], account_id: str, host: str
    ) -> DomainRow | None:
        cur = conn.cursor(row_factory=class_row(DomainRow))
        await cur.execute(self._domain, {"account": account_id, "host": host})
        return await cur.fetchone()

    async def domain_owner(self, conn: psycopg.AsyncConnection[Any], host: str) -> DomainRow | None:
        """The account's entry holding `host`, whichever account that is."""
        cur = conn.cursor(row_factory=class_row(DomainRow))
        await cur.execute(self._domain_owner, {"host": host})
        return await cur.fetchone()

    async def issuer_live(
        self, conn: psycopg.AsyncConnection[Any], account_id: str, issuer_id: str
    ) -> bool:
        cur = await conn.execute(self._issuer, {"account": account_id, "issuer": issuer_id})
        return await cur.fetchone() is not None

    async def api_key(
        self, conn: psycopg.AsyncConnection[Any], account_id: str, key_id: str, now: int
    ) -> KeyRow | None:
        cur = conn.cursor(row_factory=class_row(KeyRow))
        await cur.execute(self._key, {"id": key_id, "account": account_id, "now": now})
        return await cur.fetchone()

    async def api_keys(
        self,
        conn: psycopg.AsyncConnection[Any],
        account_id: str,
        filters: KeyFilters,
        after: tuple[int, str] | None,
        limit: int,
        now: int,
    ) -> list[KeyRow]:
        after_at, after_id = after or (None, None)
        params = {
            "account": account_id,
            "after_at": after_at,
            "after_id": after_id,
            "limit": limit,
            "now": now,
            "soon": now + READY_HORIZON_MS,
            **msgspec.structs.asdict(filters),
        }
        cur = conn.cursor(row_factory=class_row(KeyRow))
        await cur.execute(self._keys, params)
        return await cur.fetchall()

    async def account_user(
        self, conn: psycopg.AsyncConnection[Any], account_id: str, user_id: str, issuer_id: str
    ) -> bool:
        """Whether `user_id` is a live user of `issuer_id` (the platform's own) in the account."""
        params = {"user": user_id, "account": account_id, "issuer": issuer_id}
        cur = await conn.execute(self._account_user, params)
        return await cur.fetchone() is not None
