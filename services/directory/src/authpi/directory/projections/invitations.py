"""invitations_view: inline projection of the invitation events of organization streams; an
organization's deletion removes its invitations.

No clear personal data (DESIGN.md 7): a row keeps the invitation's sealed snapshot (`pii`: the
address, inviter and message, under the invitation's own data key in the region's PII key store)
and the address's hash (`email_hash`). The key dies in the commit of the event that ends the
invitation's need for it: a revocation, a decline, the organization's deletion, or the deletion
of the user who accepted it (an accepted invitation's address is that user's). The view drops
its sealed copy with it. An event written before invitations were sealed (its data in clear) is
sealed here on the way in, under a key made for it (`key_or_new`): a replay and the start-up
sealing of the rows migration 0016 left without a snapshot (`LegacyRows`) go through the same
code."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg

from authpi.contracts.directory import (
    OrganizationDeleted,
    OrganizationInvitationAccepted,
    OrganizationInvitationCreated,
    OrganizationInvitationDeclined,
    OrganizationInvitationDeleted,
    OrganizationInvitationResent,
    OrganizationInvitationUpdated,
    UserDeleted,
)
from authpi.crypto.pii import InvitationPii, PiiVault
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import EventStore, StoredEvent


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
        "user.deleted",
    )

    def __init__(self, schema: str, vault: PiiVault) -> None:
        self.schema = schema
        self.vault = vault
        s, pii = schema, vault.schema
        self._insert = render(
            "INSERT INTO {schema}.invitations_view (id, org_id, issuer_id, status, email_hash, pii,"
            " user_id_invited, user_title, scopes, metadata, token_sha256, created_at,"
            " expires_at, last_email_sent_at)"
            " VALUES (%s, %s, %s, 'pending', %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, %s, %s)"
            " ON CONFLICT (id) DO NOTHING",
            schema=s,
        )
        self._update = render(
            "UPDATE {schema}.invitations_view SET user_title = %s, scopes = %s::jsonb,"
            " metadata = %s::jsonb, pii = coalesce(%s, pii), updated_at = %s WHERE id = %s",
            schema=s,
        )
        self._sealed = render("SELECT pii FROM {schema}.invitations_view WHERE id = %s", schema=s)
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
            " pii = NULL, updated_at = %s WHERE id = %s",
            schema=s,
        )
        self._revoked = render(
            "UPDATE {schema}.invitations_view SET status = 'revoked', revoked_at = %s,"
            " pii = NULL, updated_at = %s WHERE id = %s",
            schema=s,
        )
        self._shred = render("DELETE FROM {pii}.pii_keys WHERE subject_id = %s", pii=pii)
        self._shred_org = render(
            "DELETE FROM {pii}.pii_keys WHERE subject_id IN"
            " (SELECT id FROM {schema}.invitations_view WHERE org_id = %s)",
            schema=s,
            pii=pii,
        )
        self._shred_accepted = render(
            "WITH ended AS (UPDATE {schema}.invitations_view SET pii = NULL"
            " WHERE user_id_invited = %s AND status = 'accepted' RETURNING id)"
            " DELETE FROM {pii}.pii_keys WHERE subject_id IN (SELECT id FROM ended)",
            schema=s,
            pii=pii,
        )
        self._drop = render("DELETE FROM {schema}.invitations_view WHERE org_id = %s", schema=s)
        self._reset = render("TRUNCATE {schema}.invitations_view", schema=s)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case OrganizationInvitationCreated() as e:
                email_hash, sealed = e.email_hash, e.pii
                if sealed is None:
                    email_hash, sealed = await self._seal_legacy(conn, e)
                await conn.execute(self._insert, [
                    e.id, e.org_id, e.issuer_id, email_hash, sealed, e.user_id_invited,
                    e.user_title, jsonb.dumps(e.scopes), jsonb.dumps(e.metadata), e.token_sha256,
                    e.created_at, e.expires_at, e.created_at])  # fmt: skip
            case OrganizationInvitationUpdated() as e:
                sealed = e.pii
                if sealed is None and "message" in e.changed:
                    sealed = await self._reseal_legacy(conn, e.id, e.message)
                await conn.execute(self._update, [
                    e.user_title, jsonb.dumps(e.scopes), jsonb.dumps(e.metadata), sealed,
                    e.updated_at, e.id])  # fmt: skip
            case OrganizationInvitationResent() as e:
                await conn.execute(self._resent, [e.token_sha256, e.sent_at, e.sent_at, e.id])
            case OrganizationInvitationAccepted() as e:
                await conn.execute(self._accepted, [e.user_id, e.accepted_at, e.accepted_at, e.id])
            case OrganizationInvitationDeclined() as e:
                await conn.execute(self._declined, [e.declined_at, e.declined_at, e.id])
                await conn.execute(self._shred, [e.id])
            case OrganizationInvitationDeleted() as e:
                await conn.execute(self._revoked, [e.revoked_at, e.revoked_at, e.id])
                await conn.execute(self._shred, [e.id])
            case OrganizationDeleted() as e:
                await conn.execute(self._shred_org, [e.id])
                await conn.execute(self._drop, [e.id])
            case UserDeleted() as e:
                await conn.execute(self._shred_accepted, [e.id])
            case _:
                pass

    async def _seal_legacy(
        self, conn: psycopg.AsyncConnection[Any], e: OrganizationInvitationCreated
    ) -> tuple[str, str]:
        """A created event written before sealing: its address hashed, its personal data sealed
        under a key made for it."""
        email = e.email_invited or ""
        pii = InvitationPii(email_invited=email, inviter=e.inviter, message=e.message)
        dek = await self.vault.key_or_new(conn, e.id)
        return self.vault.username_hash(e.issuer_id, email), self.vault.seal(dek, e.id, pii)

    async def _reseal_legacy(
        self, conn: psycopg.AsyncConnection[Any], invitation_id: str, message: str | None
    ) -> str | None:
        """An update written before sealing changed the message (in clear): the row's snapshot
        with that message; None when the key is gone."""
        row = await (await conn.execute(self._sealed, [invitation_id])).fetchone()
        dek = await self.vault.key_for(conn, invitation_id)
        if row is None or row[0] is None or dek is None:
            return None
        pii = self.vault.open_invitation(dek, invitation_id, row[0])
        return self.vault.seal(dek, invitation_id, msgspec.structs.replace(pii, message=message))

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)


class LegacyRows:
    """The start-up sealing of invitations_view rows written before migration 0016: each one
    still pending or accepted (by a user not deleted) is rebuilt from its invitation's events
    through the view, which seals the clear data under a new key of the invitation's own."""

    def __init__(self, store: EventStore, vault: PiiVault) -> None:
        self.store = store
        self.view = InvitationsView(store.schema, vault)
        schema = store.schema
        # One process at a time: two would make two keys for one invitation.
        self._lock = "SELECT pg_advisory_xact_lock(hashtext('authpi.invitation-sealing:' || %s))"
        self._unsealed = render(
            "SELECT i.id, i.org_id FROM {schema}.invitations_view i"
            " WHERE i.pii IS NULL AND i.email_hash IS NULL"
            " AND (i.status = 'pending' OR i.status = 'accepted' AND NOT EXISTS"
            " (SELECT 1 FROM {schema}.users_view u"
            " WHERE u.id = i.user_id_invited AND u.status = 'deleted'))"
            " ORDER BY i.org_id, i.id",
            schema=schema,
        )
        self._forget = render("DELETE FROM {schema}.invitations_view WHERE id = %s", schema=schema)

    async def seal(self) -> list[str]:
        """Seal every such row; the ids sealed (none once done: the step is repeatable)."""
        async with self.store.pool.connection() as conn, conn.transaction():
            await conn.execute(self._lock, [self.store.schema])
            rows = await (await conn.execute(self._unsealed)).fetchall()
            by_org: dict[str, set[str]] = {}
            for invitation_id, org_id in rows:
                by_org.setdefault(str(org_id), set()).add(str(invitation_id))
            for org_id, ids in by_org.items():
                await self._rebuild(conn, org_id, ids)
        return sorted(str(r[0]) for r in rows)

    async def _rebuild(
        self, conn: psycopg.AsyncConnection[Any], org_id: str, ids: set[str]
    ) -> None:
        history = await self.store.load(conn, org_id)
        for invitation_id in ids:
            await conn.execute(self._forget, [invitation_id])
        for stored in history:
            if stored.type in self.view.event_types and getattr(stored.event, "id", None) in ids:
                await self.view.apply(conn, stored)
