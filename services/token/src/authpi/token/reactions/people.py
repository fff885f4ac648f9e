"""token-users and token-organizations: the token service learns the people of its issuers from
the directory's events into its own tables (it never reads the directory's): users (status,
username hash, scopes and the sealed PII snapshot, never a clear value), organizations (status,
SSO, `security.mfa_required`) and their user memberships (status, scopes, title, join time).
Human login, ID tokens, userinfo and the organizations claim read them (`queries.people`).

Each applied user or membership event notifies `users_channel(schema)` with the user's id in the
same commit, so that a signup, an accepted invitation or an SSO sign-in (`adapters.registry`) can
answer as soon as this service sees the new user or membership."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.contracts.directory import (
    SSO_CLIENT_SECRET,
    OrganizationCreated,
    OrganizationDeleted,
    OrganizationMembershipCreated,
    OrganizationMembershipDeleted,
    OrganizationMembershipUpdated,
    OrganizationReactivated,
    OrganizationSsoDisabled,
    OrganizationSsoDomainDeleted,
    OrganizationSsoDomainVerified,
    OrganizationSsoEnabled,
    OrganizationSsoUpdated,
    OrganizationSuspended,
    OrganizationUpdated,
    UserBlocked,
    UserCreated,
    UserDeleted,
    UserUnblocked,
    UserUpdated,
)
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent

USER_MEMBER = "user"
MEMBERSHIP_EVENTS = (
    OrganizationMembershipCreated,
    OrganizationMembershipUpdated,
    OrganizationMembershipDeleted,
)
CONNECTION_TYPES = frozenset({"oidc", "saml"})


def normalise_domain(domain: str) -> str:
    """A DNS name as discovery compares it: lower case, no trailing dot."""
    return domain.strip().rstrip(".").lower()


def sso_columns(sso: dict[str, Any]) -> tuple[bool, bool, str | None]:
    """(enabled, sso_only, connection type) of an organization's `sso` object (core-api.md
    3.12): a flag that is not literally true is false; an unknown connection type is none."""
    kind = sso.get("connection_type")
    return (
        sso.get("enabled") is True,
        sso.get("sso_only") is True,
        kind if isinstance(kind, str) and kind in CONNECTION_TYPES else None,
    )


def mfa_required(security: dict[str, Any]) -> bool:
    """An organization's `security.mfa_required` (core-api.md 3.12); the directory accepts only
    a boolean there."""
    return security.get("mfa_required") is True


def users_channel(schema: str) -> str:
    """The NOTIFY channel of what this service learns of a user: the payload is the id of the
    user whose rows an applied event just changed (the user itself, one of its memberships, an
    invitation it accepted)."""
    return f"{schema}_users"


class UsersReaction:
    name = "token-users"
    event_types = ("user.created", "user.updated", "user.blocked", "user.unblocked", "user.deleted")

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.channel = users_channel(schema)
        self._insert = render(
            "INSERT INTO {schema}.users_view (id, issuer_id, account_id, username_hash,"
            " username_type, status, region, pii, scopes, version, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)"
            " ON CONFLICT (id) DO NOTHING",
            schema=schema,
        )
        self._update = render(
            "UPDATE {schema}.users_view SET pii = coalesce(%s, pii),"
            " username_hash = coalesce(%s, username_hash),"
            " username_type = coalesce(%s, username_type),"
            " scopes = coalesce(%s::jsonb, scopes), version = %s, updated_at = %s"
            " WHERE id = %s AND status <> 'deleted'",
            schema=schema,
        )
        self._status = render(
            "UPDATE {schema}.users_view SET status = %s, version = %s, updated_at = %s"
            " WHERE id = %s AND status <> 'deleted'",
            schema=schema,
        )
        self._delete = render(
            "UPDATE {schema}.users_view SET status = 'deleted', pii = NULL, version = %s,"
            " updated_at = %s WHERE id = %s",
            schema=schema,
        )
        self._notify = "SELECT pg_notify(%s, %s)"
        self._reset = render("TRUNCATE {schema}.users_view", schema=schema)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        v = stored.stream_version
        match stored.event:
            case UserCreated() as e:
                await conn.execute(
                    self._insert,
                    [e.id, e.issuer_id, stored.meta.account_id, e.username_hash, e.username_type,
                     e.status, e.region, e.pii, jsonb.dumps(e.scopes), v, e.created_at],
                )  # fmt: skip
            case UserUpdated() as e:
                scopes = None if e.scopes is None else jsonb.dumps(e.scopes)
                await conn.execute(
                    self._update,
                    [e.pii, e.username_hash, e.username_type, scopes, v, e.updated_at, e.id],
                )
            case UserBlocked() | UserUnblocked() as e:
                await conn.execute(self._status, [e.status, v, e.status_at, e.id])
            case UserDeleted() as e:
                await conn.execute(self._delete, [v, e.deleted_at, e.id])
            case _:
                return
        await conn.execute(self._notify, [self.channel, stored.stream_id])

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)


class OrganizationsReaction:
    """Organizations (status, the `sso` object and the wrapped SSO client secret, whether MFA is
    required), their user memberships and their verified SSO domains: one consumer, since all
    share the organization's stream and `organization.deleted` removes the memberships and
    domains. A membership event notifies `users_channel` with the member's id, like a user
    event."""

    name = "token-organizations"
    event_types = (
        "organization.created",
        "organization.updated",
        "organization.suspended",
        "organization.reactivated",
        "organization.deleted",
        "organization.membership.created",
        "organization.membership.updated",
        "organization.membership.deleted",
        "organization.sso.domain-verified",
        "organization.sso.domain-deleted",
        "organization.sso.enabled",
        "organization.sso.disabled",
        "organization.sso.updated",
    )

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.channel = users_channel(schema)
        self._notify = "SELECT pg_notify(%s, %s)"
        self._org_insert = render(
            "INSERT INTO {schema}.organizations_view (id, issuer_id, status, sso_enabled,"
            " sso_only, sso_connection_type, sso, mfa_required, version, updated_at)"
            " VALUES (%s, %s, 'active', %s, %s, %s, %s::jsonb, %s, %s, %s)"
            " ON CONFLICT (id) DO NOTHING",
            schema=schema,
        )
        self._org_sso = render(
            "UPDATE {schema}.organizations_view SET sso_enabled = %s, sso_only = %s,"
            " sso_connection_type = %s, sso = %s::jsonb, version = %s, updated_at = %s"
            " WHERE id = %s",
            schema=schema,
        )
        self._org_mfa = render(
            "UPDATE {schema}.organizations_view SET mfa_required = %s WHERE id = %s",
            schema=schema,
        )
        self._org_secret = render(
            "UPDATE {schema}.organizations_view SET sso_client_secret = %s WHERE id = %s",
            schema=schema,
        )
        self._org_status = render(
            "UPDATE {schema}.organizations_view SET status = %s, version = %s, updated_at = %s"
            " WHERE id = %s",
            schema=schema,
        )
        self._domain_insert = render(
            "INSERT INTO {schema}.sso_domains_view (issuer_id, domain, org_id, verified_at)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            schema=schema,
        )
        self._domain_delete = render(
            "DELETE FROM {schema}.sso_domains_view WHERE org_id = %s AND domain = %s",
            schema=schema,
        )
        self._org_domains_delete = render(
            "DELETE FROM {schema}.sso_domains_view WHERE org_id = %s", schema=schema
        )
        self._org_delete = render(
            "DELETE FROM {schema}.organizations_view WHERE id = %s", schema=schema
        )
        self._org_members_delete = render(
            "DELETE FROM {schema}.memberships_view WHERE org_id = %s", schema=schema
        )
        self._member_upsert = render(
            "INSERT INTO {schema}.memberships_view (org_id, member_id, issuer_id, status, scopes,"
            " user_title, joined_at) VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s)"
            " ON CONFLICT (org_id, member_id) DO NOTHING",
            schema=schema,
        )
        self._member_update = render(
            "UPDATE {schema}.memberships_view SET status = %s, scopes = %s::jsonb,"
            " user_title = %s, updated_at = %s WHERE org_id = %s AND member_id = %s",
            schema=schema,
        )
        self._member_delete = render(
            "DELETE FROM {schema}.memberships_view WHERE org_id = %s AND member_id = %s",
            schema=schema,
        )
        self._reset = render(
            "TRUNCATE {schema}.organizations_view, {schema}.memberships_view,"
            " {schema}.sso_domains_view",
            schema=schema,
        )

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        v = stored.stream_version
        match stored.event:
            case OrganizationCreated() as e:
                await conn.execute(
                    self._org_insert,
                    [e.id, e.issuer_id, *sso_columns(e.sso), jsonb.dumps(e.sso),
                     mfa_required(e.security), v, e.created_at],
                )  # fmt: skip
            case OrganizationUpdated() as e:
                await conn.execute(
                    self._org_sso, [*sso_columns(e.sso), jsonb.dumps(e.sso), v, e.updated_at, e.id]
                )
                await conn.execute(self._org_mfa, [mfa_required(e.security), e.id])
                if e.status is not None:
                    await conn.execute(self._org_status, [e.status, v, e.updated_at, e.id])
            case OrganizationSuspended() | OrganizationReactivated() as e:
                await conn.execute(self._org_status, [e.status, v, e.status_at, e.id])
            case OrganizationDeleted() as e:
                await conn.execute(self._org_delete, [e.id])
                await conn.execute(self._org_members_delete, [e.id])
                await conn.execute(self._org_domains_delete, [e.id])
            case (
                OrganizationSsoEnabled() | OrganizationSsoDisabled() | OrganizationSsoUpdated() as e
            ):
                await conn.execute(
                    self._org_sso,
                    [*sso_columns(e.sso), jsonb.dumps(e.sso), v, e.updated_at, e.org_id],
                )
                if SSO_CLIENT_SECRET in e.changed:
                    await conn.execute(self._org_secret, [e.client_secret_sealed, e.org_id])
            case OrganizationSsoDomainVerified() as e:
                await conn.execute(
                    self._domain_insert,
                    [e.issuer_id, normalise_domain(e.domain), e.org_id, e.verified_at],
                )
            case OrganizationSsoDomainDeleted() as e:
                await conn.execute(self._domain_delete, [e.org_id, normalise_domain(e.domain)])
            case OrganizationMembershipCreated() as e if e.member_type == USER_MEMBER:
                await conn.execute(
                    self._member_upsert,
                    [e.org_id, e.member_id, e.issuer_id, e.status, jsonb.dumps(e.scopes),
                     e.user_title, e.joined_at],
                )  # fmt: skip
            case OrganizationMembershipUpdated() as e if e.member_type == USER_MEMBER:
                await conn.execute(
                    self._member_update,
                    [e.status, jsonb.dumps(e.scopes), e.user_title, e.updated_at, e.org_id,
                     e.member_id],
                )  # fmt: skip
            case OrganizationMembershipDeleted() as e:
                await conn.execute(self._member_delete, [e.org_id, e.member_id])
            case _:
                return
        if isinstance(stored.event, MEMBERSHIP_EVENTS):
            await conn.execute(self._notify, [self.channel, stored.event.member_id])

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)
