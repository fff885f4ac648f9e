"""gateway-directory: what the gateway learns from the directory's events, into its own schema
(it never reads the directory's tables, DESIGN.md 2):

- `api-key.*` -> api_keys_view: what authentication and `/keyinfo` need (digests, never
  secrets; the name and creation time for the public key object, idp-api.md 10.1), by the one
  fold of the api-key events (`api_key_state`, as the in-memory cache): an event writes the
  columns `api_key_state.changes` names that this view keeps, and a new digest moves the
  current one to `previous_sha256`. Each row keeps the stream version of its last event; an
  event at or below it changes nothing.
- `account.created` -> accounts_view, for the `{account_id}` path check (`account.updated`
  changes nothing the gateway keeps, and accounts are never deleted).
- `user.personal-token.*` -> personal_tokens_view: what checking a `ptk_` token needs (its
  digest, never the token; status, expiry, scopes, owner), with the same rules as the in-memory
  cache (`caches.personal_tokens.PersonalTokenCache`). Deleted tokens leave the view.
- `user.created` (not active), `user.blocked`, `user.unblocked`, `user.deleted` ->
  inactive_users_view: the users whose personal tokens stop working. Active users have no row.
- `organization.suspended`, `organization.reactivated`, `organization.updated` (with a status,
  e.g. `deleting`), `organization.deleted` -> inactive_organizations_view: the organizations
  whose organization-level API keys stop authenticating
  (`caches.organizations.OrganizationStatuses`). Active organizations have no row.
- `user.deleted` also purges the idempotency records whose stored replay belongs to that user
  (a replay of a user create or update holds the user's email and profile) and destroys the
  user's replay key, which sealed them: no copy of them is readable after that (DESIGN.md 7).
  `organization.invitation.deleted` (revoked) and `organization.invitation.declined` do the
  same for the invitation's replays (they hold the invited address)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from authpi.contracts.directory import (
    AccountCreated,
    ApiKeyBlocked,
    ApiKeyCreated,
    ApiKeyDeleted,
    ApiKeyUnblocked,
    ApiKeyUpdated,
    OrganizationDeleted,
    OrganizationInvitationDeclined,
    OrganizationInvitationDeleted,
    OrganizationReactivated,
    OrganizationSuspended,
    OrganizationUpdated,
    PersonalTokenCreated,
    PersonalTokenDeleted,
    PersonalTokenUpdated,
    UserBlocked,
    UserCreated,
    UserDeleted,
    UserUnblocked,
)
from authpi.contracts.directory.api_key_state import CARRIED, changes
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent

CONSUMER = "gateway-directory"
API_KEY_EVENTS = (
    "api-key.created",
    "api-key.updated",
    "api-key.blocked",
    "api-key.unblocked",
    "api-key.deleted",
)
ACCOUNT_EVENTS = ("account.created",)
PERSONAL_TOKEN_EVENTS = (
    "user.personal-token.created",
    "user.personal-token.updated",
    "user.personal-token.deleted",
)
USER_EVENTS = ("user.created", "user.blocked", "user.unblocked", "user.deleted")
ORGANIZATION_EVENTS = (
    "organization.suspended",
    "organization.reactivated",
    "organization.updated",
    "organization.deleted",
)
# An invitation that ends: its replays (sealed under its replay key) go.
INVITATION_EVENTS = ("organization.invitation.deleted", "organization.invitation.declined")

_JSONB = frozenset({"scopes", "ip_allowlist"})
# What api_keys_view keeps of a key that an event can change (`api_key_state.changes`).
_KEY_COLUMNS = frozenset(
    {"name", "status", "scopes", "ip_allowlist", "expires_at", "secret_sha256",
     "previous_valid_until"}
)  # fmt: skip


class DirectoryReaction:
    name = CONSUMER
    event_types = (
        *API_KEY_EVENTS,
        *ACCOUNT_EVENTS,
        *PERSONAL_TOKEN_EVENTS,
        *USER_EVENTS,
        *ORGANIZATION_EVENTS,
        *INVITATION_EVENTS,
    )

    def __init__(self, schema: str) -> None:
        self.schema = schema

        self._insert_key = render(
            "INSERT INTO {schema}.api_keys_view (id, account_id, org_id, issuer_id, name,"
            " created_at, status, scopes, ip_allowlist, expires_at, secret_sha256, version)"
            " VALUES (%s, %s, %s, %s, %s, %s, 'active', %s::jsonb, %s::jsonb, %s, %s, %s)"
            " ON CONFLICT (id) DO NOTHING",
            schema=schema,
        )
        self._delete_key = render("DELETE FROM {schema}.api_keys_view WHERE id = %s", schema=schema)
        self._insert_account = render(
            "INSERT INTO {schema}.accounts_view (id, org_id, created_at) VALUES (%s, %s, %s)"
            " ON CONFLICT (id) DO NOTHING",
            schema=schema,
        )
        self._purge = render(
            "DELETE FROM {schema}.idempotency_keys WHERE resource_id = %s", schema=schema
        )
        self._replay_key = render(
            "DELETE FROM {schema}.replay_keys WHERE resource_id = %s", schema=schema
        )
        self._insert_token = render(
            "INSERT INTO {schema}.personal_tokens_view (id, jti, account_id, issuer_id, user_id,"
            " scopes, expires_at, status, token_sha256, version)"
            " VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, 'active', %s, %s)"
            " ON CONFLICT (id) DO NOTHING",
            schema=schema,
        )
        self._token_status = render(
            "UPDATE {schema}.personal_tokens_view SET status = %s, version = %s"
            " WHERE id = %s AND version < %s",
            schema=schema,
        )
        self._delete_token = render(
            "DELETE FROM {schema}.personal_tokens_view WHERE id = %s", schema=schema
        )
        self._inactive = render(
            "INSERT INTO {schema}.inactive_users_view AS u (id, status, version)"
            " VALUES (%s, %s, %s) ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
            " version = excluded.version WHERE u.version < excluded.version",
            schema=schema,
        )
        self._active = render(
            "DELETE FROM {schema}.inactive_users_view WHERE id = %s AND version < %s", schema=schema
        )
        self._inactive_org = render(
            "INSERT INTO {schema}.inactive_organizations_view AS o (id, status, version)"
            " VALUES (%s, %s, %s) ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
            " version = excluded.version WHERE o.version < excluded.version",
            schema=schema,
        )
        self._active_org = render(
            "DELETE FROM {schema}.inactive_organizations_view WHERE id = %s AND version < %s",
            schema=schema,
        )
        self._reset = render(
            "TRUNCATE {schema}.api_keys_view, {schema}.accounts_view,"
            " {schema}.personal_tokens_view, {schema}.inactive_users_view,"
            " {schema}.inactive_organizations_view",
            schema=schema,
        )
        self._updates: dict[tuple[str, ...], str] = {}

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        version = stored.stream_version
        match stored.event:
            case ApiKeyCreated() as e:
                await conn.execute(
                    self._insert_key,
                    [e.id, e.account_id, e.org_id, e.issuer_id, e.name, e.created_at,
                     jsonb.dumps(e.scopes), jsonb.dumps(e.ip_allowlist), e.expires_at,
                     e.secret_sha256, version],
                )  # fmt: skip
            case ApiKeyUpdated() | ApiKeyBlocked() | ApiKeyUnblocked() as e:
                values = _key_changes(e)
                await conn.execute(
                    self._update_query(tuple(values)), [*values.values(), version, e.id, version]
                )
            case ApiKeyDeleted() as e:
                await conn.execute(self._delete_key, [e.id])
            case AccountCreated() as e:
                await conn.execute(self._insert_account, [e.id, e.org_id, e.created_at])
            case PersonalTokenCreated() as e:
                await conn.execute(
                    self._insert_token,
                    [e.id, e.jti, e.account_id, e.issuer_id, e.user_id, jsonb.dumps(e.scopes),
                     e.expires_at, e.token_sha256, version],
                )  # fmt: skip
            case PersonalTokenUpdated() as e if e.status is not None:
                await conn.execute(self._token_status, [e.status, version, e.id, version])
            case PersonalTokenDeleted() as e:
                await conn.execute(self._delete_token, [e.id])
            case UserCreated() as e if e.status != "active":
                await conn.execute(self._inactive, [e.id, e.status, version])
            case UserBlocked() as e:
                await conn.execute(self._inactive, [e.id, e.status, version])
            case UserUnblocked() as e:
                await conn.execute(self._active, [e.id, version])
            case UserDeleted() as e:
                await conn.execute(self._inactive, [e.id, "deleted", version])
                await conn.execute(self._purge, [e.id])
                await conn.execute(self._replay_key, [e.id])
            case OrganizationInvitationDeleted() | OrganizationInvitationDeclined() as e:
                await conn.execute(self._purge, [e.id])
                await conn.execute(self._replay_key, [e.id])
            case (
                OrganizationSuspended()
                | OrganizationReactivated()
                | OrganizationUpdated()
                | OrganizationDeleted()
            ):
                await self._organization(conn, stored.stream_id, stored.event, version)

    async def _organization(
        self, conn: psycopg.AsyncConnection[Any], org_id: str, event: Any, version: int
    ) -> None:
        status = organization_status(event)
        if status == "active":
            await conn.execute(self._active_org, [org_id, version])
        elif status is not None:
            await conn.execute(self._inactive_org, [org_id, status, version])

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Empty the views (replay). Purged idempotency records stay purged."""
        await conn.execute(self._reset)

    def _update_query(self, columns: tuple[str, ...]) -> str:
        query = self._updates.get(columns)
        if query is None:
            sets = [
                sql.SQL("{} = %s{}").format(
                    sql.Identifier(c), sql.SQL("::jsonb" if c in _JSONB else "")
                )
                for c in columns
            ]
            for field, source in CARRIED:  # right-hand sides read the row before the update
                if source in columns:
                    sets.insert(0, sql.SQL("{} = {}").format(*map(sql.Identifier, (field, source))))
            sets.append(sql.SQL("version = %s"))
            query = render(
                "UPDATE {schema}.api_keys_view SET {sets} WHERE id = %s AND version < %s",
                schema=self.schema,
                sets=sql.SQL(", ").join(sets),
            )
            self._updates[columns] = query
        return query


def _key_changes(e: ApiKeyUpdated | ApiKeyBlocked | ApiKeyUnblocked) -> dict[str, object]:
    """Column -> new value, in a fixed order: what `api_key_state.changes` sets that the view
    keeps."""
    return {
        column: jsonb.dumps(value) if column in _JSONB else value
        for column, value in changes(e).items()
        if column in _KEY_COLUMNS
    }


def organization_status(event: object) -> str | None:
    """The organization status an event sets, or None when it sets none."""
    match event:
        case OrganizationSuspended() | OrganizationReactivated():
            return event.status
        case OrganizationUpdated() if event.status is not None:
            return event.status
        case OrganizationDeleted():
            return "deleted"
    return None
