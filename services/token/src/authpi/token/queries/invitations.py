"""Read-side SQL of the portal's invitation page over the token service's own tables
(reactions/invitations, reactions/people): the invitation a link's token names, with its
organization, and whether an acceptance has reached this service (the invitation accepted by
the user and the membership in memberships_view, which the next token reads).

The inviter and the message are opened on read from the invitation's sealed snapshot, with the
invitation's data key from the PII key store of the region its events came from (rows learnt
from events written before sealing keep them in clear until the invitation ends)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import psycopg
from psycopg.rows import dict_row

from authpi.crypto.ids import sha256_hex
from authpi.crypto.pii import PiiVault
from authpi.eventstore.sqltext import render

MAX_TOKEN_CHARS = 128


class InvitationRow(msgspec.Struct, frozen=True, kw_only=True):
    """`status`: pending, accepted, declined, revoked, or expired (a pending one past its
    `expires_at`, core-api.md 3.15). `org_status` is the organization's (active, suspended,
    deleting)."""

    id: str
    org_id: str
    issuer_id: str
    account_id: str
    email_hash: str
    status: str
    user_title: str | None
    message: str | None
    inviter: dict[str, Any] | None
    accepted_by: str | None
    expires_at: int
    org_name: str | None
    org_status: str
    invitation_enabled: bool

    @property
    def inviter_name(self) -> str | None:
        name = (self.inviter or {}).get("name")
        return (name.strip() or None) if isinstance(name, str) else None


class InvitationQueries:
    """`vault`: the PII key store of a region (People.vault)."""

    def __init__(self, schema: str, vault: Callable[[str], PiiVault]) -> None:
        self.vault = vault
        self._by_token = render(
            "SELECT i.id, i.org_id, i.issuer_id, i.account_id, i.email_hash,"
            " (CASE WHEN i.status = 'pending' AND i.expires_at <= %(now)s::bigint"
            " THEN 'expired' ELSE i.status END) AS status,"
            " i.user_title, i.message, i.inviter, i.pii, i.region, i.accepted_by, i.expires_at,"
            " o.name AS org_name, o.status AS org_status, o.invitation_enabled"
            " FROM {schema}.invitations_view i"
            " JOIN {schema}.invitation_orgs_view o ON o.id = i.org_id"
            " WHERE i.token_sha256 = %(token_sha256)s AND i.issuer_id = %(issuer_id)s",
            schema=schema,
        )
        self._status = render(
            "SELECT status FROM {schema}.invitations_view WHERE id = %s", schema=schema
        )
        self._joined = render(
            "SELECT EXISTS (SELECT 1 FROM {schema}.invitations_view"
            " WHERE id = %(invitation_id)s AND accepted_by = %(user_id)s)"
            " AND EXISTS (SELECT 1 FROM {schema}.memberships_view"
            " WHERE org_id = %(org_id)s AND member_id = %(user_id)s)",
            schema=schema,
        )

    async def status_is(
        self, conn: psycopg.AsyncConnection[Any], invitation_id: str, status: str
    ) -> bool:
        row = await (await conn.execute(self._status, [invitation_id])).fetchone()
        return row is not None and row[0] == status

    async def by_token(
        self, conn: psycopg.AsyncConnection[Any], issuer_id: str, token: str, now: int
    ) -> InvitationRow | None:
        """The issuer's invitation whose current link carries `token`."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        cur = conn.cursor(row_factory=dict_row)
        params = {"token_sha256": sha256_hex(token), "issuer_id": issuer_id, "now": now}
        await cur.execute(self._by_token, params)
        row = await cur.fetchone()
        if row is None:
            return None
        sealed, region = row.pop("pii"), row.pop("region")
        pii = await self.vault(region).open_invitation_stored(conn, row["id"], sealed)
        if pii is not None:
            row.update(inviter=pii.inviter, message=pii.message)
        return msgspec.convert(row, InvitationRow)

    async def joined(
        self, conn: psycopg.AsyncConnection[Any], invitation_id: str, org_id: str, user_id: str
    ) -> bool:
        """Whether this service has seen `user_id` accept the invitation and join its
        organization."""
        params = {"invitation_id": invitation_id, "org_id": org_id, "user_id": user_id}
        row = await (await conn.execute(self._joined, params)).fetchone()
        return bool(row and row[0])
