"""token-invitations: the organization invitations the hosted portal's invitation page shows and
checks (core-api.md 3.15, idp-api.md 12.6), learnt from the directory's organization.* events
into this service's own tables (it never reads the directory's): each invitation by its link's
token digest, with its status, the invited address as a username hash only (`email_hash`, as the
event carries it), the inviter and the message in the event's sealed snapshot (`pii`, opened on
read with the invitation's key, which the directory destroys when the invitation ends), and the
organization's name, status and invitation setting. Events written before sealing carried the
address, inviter and message in clear: the address is hashed here, the inviter and message kept
as they came until the invitation is revoked or declined, when every copy of them goes.

An applied answer (accepted, declined) notifies `users_channel(schema)` with the invitation's id
in the same commit, so that the portal (`adapters.registry`) can answer once this service sees
it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from authpi.contracts.directory import (
    OrganizationCreated,
    OrganizationDeleted,
    OrganizationInvitationAccepted,
    OrganizationInvitationCreated,
    OrganizationInvitationDeclined,
    OrganizationInvitationDeleted,
    OrganizationInvitationResent,
    OrganizationInvitationUpdated,
    OrganizationReactivated,
    OrganizationSuspended,
    OrganizationUpdated,
)
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent
from authpi.token.reactions.people import users_channel

# (issuer_id, address) -> the address's username hash in that issuer (queries.people), for
# events written before they carried the hash.
AddressHash = Callable[[str, str], str]


class InvitationsReaction:
    name = "token-invitations"
    event_types = (
        "organization.created",
        "organization.updated",
        "organization.suspended",
        "organization.reactivated",
        "organization.deleted",
        "organization.invitation.created",
        "organization.invitation.updated",
        "organization.invitation.resent",
        "organization.invitation.accepted",
        "organization.invitation.declined",
        "organization.invitation.deleted",
    )

    def __init__(self, schema: str, address_hash: AddressHash) -> None:
        self.schema = schema
        self.address_hash = address_hash
        self.channel = users_channel(schema)
        self._org_upsert = render(
            "INSERT INTO {schema}.invitation_orgs_view (id, issuer_id, name, status,"
            " invitation_enabled, updated_at) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
            " invitation_enabled = excluded.invitation_enabled,"
            " status = coalesce(%s, {schema}.invitation_orgs_view.status),"
            " updated_at = excluded.updated_at",
            schema=schema,
        )
        self._org_status = render(
            "UPDATE {schema}.invitation_orgs_view SET status = %s, updated_at = %s WHERE id = %s",
            schema=schema,
        )
        self._org_delete = render(
            "DELETE FROM {schema}.invitation_orgs_view WHERE id = %s", schema=schema
        )
        self._org_invitations_delete = render(
            "DELETE FROM {schema}.invitations_view WHERE org_id = %s", schema=schema
        )
        self._insert = render(
            "INSERT INTO {schema}.invitations_view (id, org_id, issuer_id, account_id,"
            " email_hash, token_sha256, status, user_title, message, inviter, pii, region,"
            " expires_at, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, 'pending', %s, %s, %s::jsonb, %s, %s, %s, %s)"
            " ON CONFLICT (id) DO NOTHING",
            schema=schema,
        )
        # A new sealed snapshot replaces every clear copy; an update written before sealing
        # carries a changed message in clear.
        self._update = render(
            "UPDATE {schema}.invitations_view SET user_title = %(user_title)s,"
            " message = CASE WHEN %(pii)s::text IS NOT NULL THEN NULL"
            " WHEN %(clear)s THEN %(message)s ELSE message END,"
            " inviter = CASE WHEN %(pii)s::text IS NOT NULL THEN NULL ELSE inviter END,"
            " pii = coalesce(%(pii)s, pii), updated_at = %(at)s WHERE id = %(id)s",
            schema=schema,
        )
        self._resent = render(
            "UPDATE {schema}.invitations_view SET token_sha256 = %s, updated_at = %s WHERE id = %s",
            schema=schema,
        )
        self._status = render(
            "UPDATE {schema}.invitations_view SET status = %s, accepted_by = %s, updated_at = %s"
            " WHERE id = %s",
            schema=schema,
        )
        # Revoked or declined: its key is gone, and so is every copy of its personal data here.
        self._ended = render(
            "UPDATE {schema}.invitations_view SET status = %s, message = NULL, inviter = NULL,"
            " pii = NULL, updated_at = %s WHERE id = %s",
            schema=schema,
        )
        self._notify = "SELECT pg_notify(%s, %s)"
        self._reset = render(
            "TRUNCATE {schema}.invitations_view, {schema}.invitation_orgs_view", schema=schema
        )

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case OrganizationCreated() | OrganizationUpdated() as e:
                await self._organization(conn, e)
            case OrganizationSuspended() | OrganizationReactivated() as e:
                await conn.execute(self._org_status, [e.status, e.status_at, e.id])
            case OrganizationDeleted() as e:
                await conn.execute(self._org_delete, [e.id])
                await conn.execute(self._org_invitations_delete, [e.id])
            case OrganizationInvitationCreated() as e:
                email_hash = e.email_hash or self.address_hash(e.issuer_id, e.email_invited or "")
                await conn.execute(
                    self._insert,
                    [e.id, e.org_id, e.issuer_id, stored.meta.account_id, email_hash,
                     e.token_sha256, e.user_title, e.message, jsonb.dumps(e.inviter), e.pii,
                     stored.meta.region, e.expires_at, e.created_at],
                )  # fmt: skip
            case OrganizationInvitationUpdated() as e:
                await conn.execute(self._update, {
                    "user_title": e.user_title, "pii": e.pii, "message": e.message,
                    "clear": e.pii is None and "message" in e.changed, "at": e.updated_at,
                    "id": e.id})  # fmt: skip
            case OrganizationInvitationResent() as e:
                await conn.execute(self._resent, [e.token_sha256, e.sent_at, e.id])
            case OrganizationInvitationAccepted() as e:
                await conn.execute(self._status, ["accepted", e.user_id, e.accepted_at, e.id])
                await conn.execute(self._notify, [self.channel, e.id])
            case OrganizationInvitationDeclined() as e:
                await conn.execute(self._ended, ["declined", e.declined_at, e.id])
                await conn.execute(self._notify, [self.channel, e.id])
            case OrganizationInvitationDeleted() as e:
                await conn.execute(self._ended, ["revoked", e.revoked_at, e.id])
            case _:
                return

    async def _organization(
        self,
        conn: psycopg.AsyncConnection[Any],
        e: OrganizationCreated | OrganizationUpdated,
    ) -> None:
        if isinstance(e, OrganizationCreated):
            status, at = "active", e.created_at
        else:
            status, at = e.status, e.updated_at  # None: the status did not move
        await conn.execute(
            self._org_upsert,
            [e.id, e.issuer_id, e.name, status or "active", e.invitation_enabled, at, status],
        )

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)
