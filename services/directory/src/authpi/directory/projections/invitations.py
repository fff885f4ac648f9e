"""invitations_view: inline projection of the invitation events of organization streams; an
organization's deletion removes its invitations."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.contracts.directory import (
    OrganizationDeleted,
    OrganizationInvitationAccepted,
    OrganizationInvitationCreated,
    OrganizationInvitationDeclined,
    OrganizationInvitationDeleted,
    OrganizationInvitationResent,
    OrganizationInvitationUpdated,
)
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent


class InvitationsView:
    name = "directory-invitations"
    event_types = (
        "organization.invitation.created",
        "organization.invitation.updated",
        "organization.invitation.resent",
        "organization.invitation.accepted",
        "organization.invitation.declined",
        "organization.invitation.deleted",
        "organization.deleted",
    )

    def __init__(self, schema: str) -> None:
        self.schema = schema
        s = schema
        self._insert = render(
            "INSERT INTO {schema}.invitations_view (id, org_id, issuer_id, status, email_invited,"
            " user_id_invited, user_title, message, scopes, inviter, metadata, token_sha256,"
            " created_at, expires_at, last_email_sent_at)"
            " VALUES (%s, %s, %s, 'pending', %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb, %s,"
            " %s, %s, %s) ON CONFLICT (id) DO NOTHING",
            schema=s,
        )
        self._update = render(
            "UPDATE {schema}.invitations_view SET user_title = %s, message = %s,"
            " scopes = %s::jsonb, metadata = %s::jsonb, updated_at = %s WHERE id = %s",
            schema=s,
        )
        self._resent = render(
            "UPDATE {schema}.invitations_view SET token_sha256 = %s, last_email_sent_at = %s,"
            " updated_at = %s WHERE id = %s",
            schema=s,
        )
        self._accepted = render(
            "UPDATE {schema}.invitations_view SET status = 'accepted', user_id_invited = %s,"
            " accepted_at = %s, updated_at = %s WHERE id = %s",
            schema=s,
        )
        self._declined = render(
            "UPDATE {schema}.invitations_view SET status = 'declined', declined_at = %s,"
            " updated_at = %s WHERE id = %s",
            schema=s,
        )
        self._revoked = render(
            "UPDATE {schema}.invitations_view SET status = 'revoked', revoked_at = %s,"
            " updated_at = %s WHERE id = %s",
            schema=s,
        )
        self._drop = render("DELETE FROM {schema}.invitations_view WHERE org_id = %s", schema=s)
        self._reset = render("TRUNCATE {schema}.invitations_view", schema=s)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case OrganizationInvitationCreated() as e:
                inviter = None if e.inviter is None else jsonb.dumps(e.inviter)
                await conn.execute(self._insert, [
                    e.id, e.org_id, e.issuer_id, e.email_invited, e.user_id_invited,
                    e.user_title, e.message, jsonb.dumps(e.scopes), inviter,
                    jsonb.dumps(e.metadata), e.token_sha256, e.created_at, e.expires_at,
                    e.created_at])  # fmt: skip
            case OrganizationInvitationUpdated() as e:
                await conn.execute(self._update, [
                    e.user_title, e.message, jsonb.dumps(e.scopes), jsonb.dumps(e.metadata),
                    e.updated_at, e.id])  # fmt: skip
            case OrganizationInvitationResent() as e:
                await conn.execute(self._resent, [e.token_sha256, e.sent_at, e.sent_at, e.id])
            case OrganizationInvitationAccepted() as e:
                await conn.execute(self._accepted, [e.user_id, e.accepted_at, e.accepted_at, e.id])
            case OrganizationInvitationDeclined() as e:
                await conn.execute(self._declined, [e.declined_at, e.declined_at, e.id])
            case OrganizationInvitationDeleted() as e:
                await conn.execute(self._revoked, [e.revoked_at, e.revoked_at, e.id])
            case OrganizationDeleted() as e:
                await conn.execute(self._drop, [e.id])
            case _:
                pass

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)
