"""organizations_view, members_view and groups_view: inline projection of the organization
stream. `organization.deleted` leaves a tombstone (id, status `deleted`, status_at) and removes
the organization's memberships and groups; a deleted group leaves every membership's `groups`."""

from __future__ import annotations

from typing import Any, LiteralString

import psycopg
from psycopg import sql

from authpi.contracts.directory import (
    OrganizationCreated,
    OrganizationDeleted,
    OrganizationGroupCreated,
    OrganizationGroupDeleted,
    OrganizationGroupUpdated,
    OrganizationMembershipCreated,
    OrganizationMembershipDeleted,
    OrganizationMembershipUpdated,
    OrganizationReactivated,
    OrganizationSsoDisabled,
    OrganizationSsoDomainCreated,
    OrganizationSsoDomainDeleted,
    OrganizationSsoDomainVerified,
    OrganizationSsoEnabled,
    OrganizationSsoUpdated,
    OrganizationSuspended,
    OrganizationUpdated,
)
from authpi.directory.domain.commands.organization import PROFILE_FIELDS
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent

_JSON_COLUMNS = frozenset(
    {"default_member_scopes", "address", "business_details", "contact", "social_links",
     "scopes", "security", "sso", "custom_fields", "metadata", "groups"}
)  # fmt: skip
_MEMBER_COLUMNS = ("status", "status_reason", "status_by", "scopes", "groups", "user_title",
                   "metadata")  # fmt: skip
_GROUP_COLUMNS = ("name", "description", "scopes", "metadata")


def _value(column: str, value: object) -> object:
    if column in _JSON_COLUMNS and value is not None:
        return jsonb.dumps(value)
    return value


def _placeholder(column: str) -> sql.Composable:
    return sql.SQL("%s::jsonb" if column in _JSON_COLUMNS else "%s")


def _insert(schema: str, table: str, columns: tuple[str, ...]) -> LiteralString:
    return render(
        "INSERT INTO {schema}.{table} ({columns}) VALUES ({values}) ON CONFLICT DO NOTHING",
        schema=schema,
        table=table,
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        values=sql.SQL(", ").join(_placeholder(c) for c in columns),
    )


def _update(
    schema: str, table: str, columns: tuple[str, ...], where: LiteralString
) -> LiteralString:
    sets = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(c), _placeholder(c)) for c in columns
    )
    return render(
        "UPDATE {schema}.{table} SET {sets} WHERE " + where, schema=schema, table=table, sets=sets
    )


_ORG_INSERT = ("id", "account_id", "issuer_id", "status", *PROFILE_FIELDS, "version", "created_at")
_ORG_UPDATE = (*PROFILE_FIELDS, "version", "updated_at")
_ORG_STATUS = ("status", "status_at", "status_reason", "status_by", "version", "updated_at")
_MEMBER_INSERT = ("org_id", "member_id", "member_type", "issuer_id", *_MEMBER_COLUMNS, "joined_at")
_GROUP_INSERT = ("id", "org_id", "issuer_id", *_GROUP_COLUMNS, "created_at")


class OrganizationsView:
    name = "directory-organizations"
    event_types = (
        "organization.created",
        "organization.updated",
        "organization.suspended",
        "organization.reactivated",
        "organization.deleted",
        "organization.membership.created",
        "organization.membership.updated",
        "organization.membership.deleted",
        "organization.group.created",
        "organization.group.updated",
        "organization.group.deleted",
        "organization.sso.enabled",
        "organization.sso.disabled",
        "organization.sso.updated",
        "organization.sso.domain-created",
        "organization.sso.domain-verified",
        "organization.sso.domain-deleted",
    )

    def __init__(self, schema: str) -> None:
        self.schema = schema
        s = schema
        self._org_insert = _insert(s, "organizations_view", _ORG_INSERT)
        self._org_update = _update(s, "organizations_view", _ORG_UPDATE, "id = %s")
        self._org_status = _update(s, "organizations_view", _ORG_STATUS, "id = %s")
        self._member_insert = _insert(s, "members_view", _MEMBER_INSERT)
        self._member_update = _update(
            s, "members_view", (*_MEMBER_COLUMNS, "updated_at"), "org_id = %s AND member_id = %s"
        )
        self._group_insert = _insert(s, "groups_view", _GROUP_INSERT)
        self._group_update = _update(s, "groups_view", (*_GROUP_COLUMNS, "updated_at"), "id = %s")
        self._tombstone = render(
            "UPDATE {schema}.organizations_view SET status = 'deleted', status_at = %s,"
            " status_reason = NULL, status_by = NULL, name = NULL, description = NULL,"
            " logo_url = NULL, invitation_message = NULL, address = NULL,"
            " business_details = '{{}}', contact = '{{}}', social_links = '[]',"
            " custom_fields = '{{}}', metadata = '{{}}', scopes = '[]',"
            " default_member_scopes = '[]', security = '{{}}', sso = '{{}}',"
            " version = %s, updated_at = %s"
            " WHERE id = %s",
            schema=schema,
        )
        self._drop_members = render(
            "DELETE FROM {schema}.members_view WHERE org_id = %s", schema=schema
        )
        self._drop_groups = render(
            "DELETE FROM {schema}.groups_view WHERE org_id = %s", schema=schema
        )
        self._member_delete = render(
            "DELETE FROM {schema}.members_view WHERE org_id = %s AND member_id = %s", schema=schema
        )
        self._group_delete = render("DELETE FROM {schema}.groups_view WHERE id = %s", schema=schema)
        self._ungroup = render(
            "UPDATE {schema}.members_view SET groups = groups - %s WHERE org_id = %s"
            " AND groups ? %s",
            schema=schema,
        )
        self._sso = render(
            "UPDATE {schema}.organizations_view SET sso = %s::jsonb, version = %s, updated_at = %s"
            " WHERE id = %s",
            schema=schema,
        )
        self._touch = render(
            "UPDATE {schema}.organizations_view SET version = %s, updated_at = %s WHERE id = %s",
            schema=schema,
        )
        self._domain_insert = render(
            "INSERT INTO {schema}.org_sso_domains_view (org_id, issuer_id, domain, created_at)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            schema=schema,
        )
        # An upsert: streams written before domains were added through the routes verify a
        # domain that was never created (it counts as created when verified).
        self._domain_verified = render(
            "INSERT INTO {schema}.org_sso_domains_view (org_id, issuer_id, domain, created_at,"
            " verified_at) VALUES (%(org)s, %(issuer)s, %(domain)s, %(at)s, %(at)s)"
            " ON CONFLICT (org_id, domain) DO UPDATE SET verified_at = EXCLUDED.verified_at",
            schema=schema,
        )
        self._domain_delete = render(
            "DELETE FROM {schema}.org_sso_domains_view WHERE org_id = %s AND domain = %s",
            schema=schema,
        )
        self._reset = render(
            "TRUNCATE {schema}.organizations_view, {schema}.members_view, {schema}.groups_view,"
            " {schema}.org_sso_domains_view",
            schema=schema,
        )

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        version = stored.stream_version
        match stored.event:
            case OrganizationCreated() as e:
                values = [e.id, e.account_id, e.issuer_id, "active",
                          *_profile(e), version, e.created_at]  # fmt: skip
                await conn.execute(self._org_insert, values)
            case OrganizationUpdated() as e:
                await conn.execute(self._org_update, [*_profile(e), version, e.updated_at, e.id])
                if e.status is not None:
                    await conn.execute(
                        self._org_status,
                        [e.status, e.updated_at, e.status_reason, e.status_by, version,
                         e.updated_at, e.id],
                    )  # fmt: skip
            case OrganizationSuspended() | OrganizationReactivated() as e:
                await conn.execute(
                    self._org_status,
                    [e.status, e.status_at, e.status_reason, e.status_by, version, e.status_at,
                     e.id],
                )  # fmt: skip
            case OrganizationDeleted() as e:
                await conn.execute(self._tombstone, [e.deleted_at, version, e.deleted_at, e.id])
                await conn.execute(self._drop_members, [e.id])
                await conn.execute(self._drop_groups, [e.id])
            case _:
                await self._apply_child(conn, stored)

    async def _apply_child(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case OrganizationMembershipCreated() as e:
                members = [_value(c, getattr(e, c)) for c in _MEMBER_COLUMNS]
                await conn.execute(
                    self._member_insert,
                    [e.org_id, e.member_id, e.member_type, e.issuer_id, *members, e.joined_at],
                )
            case OrganizationMembershipUpdated() as e:
                members = [_value(c, getattr(e, c)) for c in _MEMBER_COLUMNS]
                await conn.execute(
                    self._member_update, [*members, e.updated_at, e.org_id, e.member_id]
                )
            case OrganizationMembershipDeleted() as e:
                await conn.execute(self._member_delete, [e.org_id, e.member_id])
            case OrganizationGroupCreated() as e:
                groups = [_value(c, getattr(e, c)) for c in _GROUP_COLUMNS]
                await conn.execute(
                    self._group_insert, [e.id, e.org_id, e.issuer_id, *groups, e.created_at]
                )
            case OrganizationGroupUpdated() as e:
                groups = [_value(c, getattr(e, c)) for c in _GROUP_COLUMNS]
                await conn.execute(self._group_update, [*groups, e.updated_at, e.id])
            case OrganizationGroupDeleted() as e:
                await conn.execute(self._group_delete, [e.id])
                await conn.execute(self._ungroup, [e.id, e.org_id, e.id])
            case _:
                await self._apply_sso(conn, stored)

    async def _apply_sso(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        version = stored.stream_version
        match stored.event:
            case (
                OrganizationSsoEnabled()
                | OrganizationSsoDisabled()
                | (OrganizationSsoUpdated()) as e
            ):
                await conn.execute(self._sso, [jsonb.dumps(e.sso), version, e.updated_at, e.org_id])
            case OrganizationSsoDomainCreated() as e:
                await conn.execute(self._domain_insert, [e.org_id, e.issuer_id, e.domain,
                                                         e.created_at])  # fmt: skip
                await conn.execute(self._touch, [version, e.created_at, e.org_id])
            case OrganizationSsoDomainVerified() as e:
                await conn.execute(
                    self._domain_verified,
                    {"org": e.org_id, "issuer": e.issuer_id, "domain": e.domain,
                     "at": e.verified_at},
                )  # fmt: skip
                await conn.execute(self._touch, [version, e.verified_at, e.org_id])
            case OrganizationSsoDomainDeleted() as e:
                await conn.execute(self._domain_delete, [e.org_id, e.domain])
                await conn.execute(self._touch, [version, e.deleted_at, e.org_id])
            case _:
                return

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)


def _profile(e: OrganizationCreated | OrganizationUpdated) -> list[object]:
    return [_value(f, getattr(e, f)) for f in PROFILE_FIELDS]
