"""Read-side SQL over invitations_view: an organization's invitations newest first by
(created_at, id), one invitation with its ETag, and the lookup of a link's token digest. A
pending invitation past its expiry reads as `expired` (core-api.md 3.15)."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
from psycopg.rows import dict_row

from authpi.directory.api.organization_models import Invitation
from authpi.eventstore.sqltext import render
from authpi.web.etag import etag_of
from authpi.web.pagination import SortKey, time_id_key

_STATUS = (
    "(CASE WHEN status = 'pending' AND expires_at <= %(now)s::bigint THEN 'expired'"
    " ELSE status END)"
)
_COLUMNS = (
    f"id, org_id, issuer_id, {_STATUS} AS status, email_invited, user_id_invited, user_title,"
    " message, scopes, inviter, created_at, expires_at, accepted_at, declined_at, revoked_at,"
    " last_email_sent_at, metadata, updated_at"
)


class InvitationLink(msgspec.Struct, frozen=True, kw_only=True):
    """What the portal's page needs of the invitation a link names."""

    id: str
    org_id: str
    issuer_id: str
    account_id: str
    org_name: str | None
    status: str
    email_invited: str
    user_title: str | None
    message: str | None
    inviter: dict[str, Any] | None


def _invitation(row: dict[str, Any]) -> Invitation:
    row = dict(row)
    row.pop("updated_at", None)
    return msgspec.convert(row, Invitation)


class InvitationQueries:
    def __init__(self, schema: str) -> None:
        self._one = render(
            f"SELECT {_COLUMNS} FROM {{schema}}.invitations_view"
            " WHERE org_id = %(org_id)s AND id = %(id)s",
            schema=schema,
        )
        self._list = render(
            f"SELECT {_COLUMNS} FROM {{schema}}.invitations_view WHERE org_id = %(org_id)s"
            f" AND (%(status)s::text IS NULL OR {_STATUS} = %(status)s)"
            " AND (%(after_at)s::bigint IS NULL"
            " OR (created_at, id) < (%(after_at)s::bigint, %(after_id)s))"
            " ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
            schema=schema,
        )
        self._link = render(
            "SELECT i.id, i.org_id, i.issuer_id, o.account_id, o.name AS org_name,"
            " (CASE WHEN i.status = 'pending' AND i.expires_at <= %(now)s::bigint"
            " THEN 'expired' ELSE i.status END) AS status,"
            " i.email_invited, i.user_title, i.message, i.inviter"
            " FROM {schema}.invitations_view i JOIN {schema}.organizations_view o"
            " ON o.id = i.org_id WHERE i.token_sha256 = %(token_sha256)s",
            schema=schema,
        )

    async def invitation(
        self, conn: psycopg.AsyncConnection[Any], org_id: str, invitation_id: str, now: int
    ) -> tuple[Invitation, str] | None:
        """The invitation and its ETag."""
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(self._one, {"org_id": org_id, "id": invitation_id, "now": now})
        row = await cur.fetchone()
        if row is None:
            return None
        return _invitation(row), etag_of(row["created_at"], row["updated_at"])

    async def invitations(
        self, conn: psycopg.AsyncConnection[Any], org_id: str, status: str | None,
        after: SortKey | None, limit: int, now: int,
    ) -> list[Invitation]:  # fmt: skip
        key = time_id_key(after)  # a cursor of another shape is a 400
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(self._list, {
            "org_id": org_id, "status": status, "limit": limit, "now": now,
            "after_at": key and key[0], "after_id": key and key[1]})  # fmt: skip
        return [_invitation(r) for r in await cur.fetchall()]

    async def link(
        self, conn: psycopg.AsyncConnection[Any], token_sha256: str, now: int
    ) -> InvitationLink | None:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(self._link, {"token_sha256": token_sha256, "now": now})
        row = await cur.fetchone()
        return None if row is None else msgspec.convert(row, InvitationLink)
