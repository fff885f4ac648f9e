"""Read-side SQL for organizations, memberships, groups and organization-level API keys, and the
existence checks the organization handlers need (issuers of an account, users of an issuer).
Lists are newest first by (created_at or joined_at, id); rows map straight to wire Structs."""

from __future__ import annotations

from typing import Any, LiteralString

import msgspec
import psycopg
from psycopg.rows import class_row

from authpi.directory.api.organization_models import (
    Group,
    Membership,
    Organization,
    OrganizationListItem,
    OrgApiKeyItem,
)
from authpi.eventstore.sqltext import render
from authpi.web.pagination import SortKey, time_id_key


class KeyFilters(msgspec.Struct, frozen=True, kw_only=True):
    status: str | None = None
    q: str | None = None
    access: str | None = None
    readiness: str | None = None
    now: int = 0
    ready_until: int = 0  # now + 14 days


class OrgFilters(msgspec.Struct, frozen=True, kw_only=True):
    status: str | None = None
    sso_enabled: bool | None = None
    sso_only: bool | None = None
    mfa_required: bool | None = None
    invitation_enabled: bool | None = None


_ORG_COLUMNS = (
    "o.id, o.issuer_id, o.status, o.status_at, o.status_reason, o.status_by, o.name,"
    " o.description, o.logo_url, o.org_type, o.max_members, o.default_member_scopes,"
    " o.invitation_enabled, o.invitation_message, o.address, o.business_details, o.contact,"
    " o.social_links, o.scopes, o.security, o.sso, o.custom_fields, o.metadata, o.created_at,"
    " o.updated_at"
)
_LIST_COLUMNS = (
    "o.id, o.issuer_id, o.name, o.logo_url, o.status, o.org_type, o.sso, o.security, o.scopes,"
    " o.invitation_enabled, o.max_members, o.default_member_scopes, o.created_at, o.updated_at"
)
_STATS = (
    "jsonb_build_object('n_members', (SELECT count(*) FROM {schema}.members_view m"
    " WHERE m.org_id = o.id)) AS stats"
)
_AFTER = (
    " AND (%(after_at)s::bigint IS NULL OR ({at}, {id}) < (%(after_at)s::bigint, %(after_id)s))"
)


# Key filters of core-api.md 3.4 (rec.): `access` from the scopes, `readiness` from status,
# scopes and expiry (ready = active, has scopes, not expiring within 14 days).
_ACCESS = (
    " AND (%(access)s::text IS NULL"
    " OR (%(access)s = 'none' AND scopes = '[]'::jsonb)"
    " OR (%(access)s = 'read' AND scopes <> '[]'::jsonb AND NOT EXISTS (SELECT 1 FROM"
    " jsonb_array_elements_text(scopes) AS x(s) WHERE x.s NOT LIKE '%%:read'))"
    " OR (%(access)s = 'write' AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(scopes)"
    " AS x(s) WHERE x.s LIKE '%%:write' OR x.s LIKE '%%:manage')))"
)
_KEY_STATUS = (
    "(CASE WHEN status = 'active' AND expires_at IS NOT NULL AND expires_at <= %(now)s::bigint"
    " THEN 'expired' ELSE status END)"
)
_READY = (
    "(status = 'active' AND scopes <> '[]'::jsonb"
    " AND (expires_at IS NULL OR expires_at > %(ready_until)s::bigint))"
)

_READINESS = (
    f" AND (%(readiness)s::text IS NULL OR (%(readiness)s = 'ready' AND {_READY})"
    f" OR (%(readiness)s = 'attention' AND NOT {_READY}))"
)


def _flag(expr: LiteralString, name: LiteralString) -> LiteralString:
    return f" AND (%({name})s::boolean IS NULL OR coalesce({expr}, false) = %({name})s::boolean)"


def _after(after: SortKey | None) -> dict[str, Any]:
    key = time_id_key(after)  # a cursor of another shape is a 400
    return {"after_at": key and key[0], "after_id": key and key[1]}


class OrganizationQueries:
    def __init__(self, schema: str) -> None:
        live = " AND o.status IN ('active', 'suspended')"
        self._org = render(
            f"SELECT {_ORG_COLUMNS}, {_STATS} FROM {{schema}}.organizations_view o"
            " WHERE o.id = %(org_id)s AND o.account_id = %(account_id)s"
            f" AND o.issuer_id = %(issuer_id)s{live}",
            schema=schema,
        )
        self._orgs = render(
            f"SELECT {_LIST_COLUMNS}, {_STATS} FROM {{schema}}.organizations_view o"
            " WHERE o.account_id = %(account_id)s AND o.issuer_id = %(issuer_id)s"
            " AND (o.status = %(status)s OR (%(status)s::text IS NULL"
            " AND o.status IN ('active', 'suspended')))"
            + _flag("(o.sso->>'enabled')::boolean", "sso_enabled")
            + _flag("(o.sso->>'sso_only')::boolean", "sso_only")
            + _flag("(o.security->>'mfa_required')::boolean", "mfa_required")
            + _flag("o.invitation_enabled", "invitation_enabled")
            + _AFTER.format(at="o.created_at", id="o.id")
            + " ORDER BY o.created_at DESC, o.id DESC LIMIT %(limit)s",
            schema=schema,
        )
        member_columns = (
            "org_id, member_id, member_type, issuer_id, status, status_reason, status_by, scopes,"
            " groups, user_title, metadata, joined_at, updated_at"
        )
        self._member = render(
            f"SELECT {member_columns} FROM {{schema}}.members_view"
            " WHERE org_id = %(org_id)s AND member_id = %(member_id)s",
            schema=schema,
        )
        self._members = render(
            f"SELECT {member_columns} FROM {{schema}}.members_view WHERE org_id = %(org_id)s"
            " AND (%(status)s::text IS NULL OR status = %(status)s)"
            " AND (%(scope)s::text IS NULL OR scopes ? %(scope)s)"
            + _AFTER.format(at="joined_at", id="member_id")
            + " ORDER BY joined_at DESC, member_id DESC LIMIT %(limit)s",
            schema=schema,
        )
        group_columns = (
            "id, org_id, issuer_id, name, description, scopes, metadata, created_at, updated_at"
        )
        self._group = render(
            f"SELECT {group_columns} FROM {{schema}}.groups_view"
            " WHERE org_id = %(org_id)s AND id = %(group_id)s",
            schema=schema,
        )
        self._groups = render(
            f"SELECT {group_columns} FROM {{schema}}.groups_view WHERE org_id = %(org_id)s"
            + _AFTER.format(at="created_at", id="id")
            + " ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
            schema=schema,
        )
        self._keys = render(
            f"SELECT id, org_id, coalesce(issuer_id, '') AS issuer_id, {_KEY_STATUS} AS status,"
            " name, description,"
            " tags, scopes, ip_allowlist, expires_at, secret_hint, last_rotated_at, status_at,"
            f" created_at, updated_at FROM {{schema}}.api_keys_view"
            " WHERE account_id = %(account_id)s AND org_id = %(org_id)s"
            f" AND (%(status)s::text IS NULL OR {_KEY_STATUS} = %(status)s)"
            " AND (%(q)s::text IS NULL OR strpos(lower(name), lower(%(q)s)) > 0)"
            + _ACCESS
            + _READINESS
            + _AFTER.format(at="created_at", id="id")
            + " ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
            schema=schema,
        )
        self._deleting = render(
            "SELECT id FROM {schema}.organizations_view WHERE status = 'deleting' ORDER BY id",
            schema=schema,
        )
        self._issuer = render(
            "SELECT 1 FROM {schema}.issuers_view WHERE id = %(issuer_id)s"
            " AND account_id = %(account_id)s AND status <> 'deleted'",
            schema=schema,
        )
        self._user = render(
            "SELECT 1 FROM {schema}.users_view WHERE id = %(user_id)s"
            " AND account_id = %(account_id)s AND issuer_id = %(issuer_id)s"
            " AND status <> 'deleted'",
            schema=schema,
        )

    async def organization(
        self, conn: psycopg.AsyncConnection[Any], account_id: str, issuer_id: str, org_id: str
    ) -> Organization | None:
        cur = conn.cursor(row_factory=class_row(Organization))
        params = {"account_id": account_id, "issuer_id": issuer_id, "org_id": org_id}
        await cur.execute(self._org, params)
        return await cur.fetchone()

    async def organizations(
        self, conn: psycopg.AsyncConnection[Any], account_id: str, issuer_id: str,
        filters: OrgFilters, after: SortKey | None, limit: int,
    ) -> list[OrganizationListItem]:  # fmt: skip
        cur = conn.cursor(row_factory=class_row(OrganizationListItem))
        params = {"account_id": account_id, "issuer_id": issuer_id, "limit": limit,
                  **msgspec.structs.asdict(filters), **_after(after)}  # fmt: skip
        await cur.execute(self._orgs, params)
        return await cur.fetchall()

    async def member(
        self, conn: psycopg.AsyncConnection[Any], org_id: str, member_id: str
    ) -> Membership | None:
        cur = conn.cursor(row_factory=class_row(Membership))
        await cur.execute(self._member, {"org_id": org_id, "member_id": member_id})
        return await cur.fetchone()

    async def members(
        self, conn: psycopg.AsyncConnection[Any], org_id: str, status: str | None,
        scope: str | None, after: SortKey | None, limit: int,
    ) -> list[Membership]:  # fmt: skip
        cur = conn.cursor(row_factory=class_row(Membership))
        params = {"org_id": org_id, "status": status, "scope": scope, "limit": limit,
                  **_after(after)}  # fmt: skip
        await cur.execute(self._members, params)
        return await cur.fetchall()

    async def group(
        self, conn: psycopg.AsyncConnection[Any], org_id: str, group_id: str
    ) -> Group | None:
        cur = conn.cursor(row_factory=class_row(Group))
        await cur.execute(self._group, {"org_id": org_id, "group_id": group_id})
        return await cur.fetchone()

    async def groups(
        self, conn: psycopg.AsyncConnection[Any], org_id: str, after: SortKey | None, limit: int
    ) -> list[Group]:
        cur = conn.cursor(row_factory=class_row(Group))
        await cur.execute(self._groups, {"org_id": org_id, "limit": limit, **_after(after)})
        return await cur.fetchall()

    async def api_keys(
        self, conn: psycopg.AsyncConnection[Any], account_id: str, org_id: str,
        filters: KeyFilters, after: SortKey | None, limit: int,
    ) -> list[OrgApiKeyItem]:  # fmt: skip
        cur = conn.cursor(row_factory=class_row(OrgApiKeyItem))
        params = {"account_id": account_id, "org_id": org_id, "limit": limit,
                  **msgspec.structs.asdict(filters), **_after(after)}  # fmt: skip
        await cur.execute(self._keys, params)
        return await cur.fetchall()

    async def deleting(self, conn: psycopg.AsyncConnection[Any]) -> list[str]:
        cur = await conn.execute(self._deleting)
        return [str(row[0]) for row in await cur.fetchall()]

    async def issuer_exists(
        self, conn: psycopg.AsyncConnection[Any], account_id: str, issuer_id: str
    ) -> bool:
        cur = await conn.execute(self._issuer, {"account_id": account_id, "issuer_id": issuer_id})
        return await cur.fetchone() is not None

    async def user_exists(
        self, conn: psycopg.AsyncConnection[Any], account_id: str, issuer_id: str, user_id: str
    ) -> bool:
        params = {"account_id": account_id, "issuer_id": issuer_id, "user_id": user_id}
        cur = await conn.execute(self._user, params)
        return await cur.fetchone() is not None
