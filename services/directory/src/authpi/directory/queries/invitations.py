"""Read-side SQL over invitations_view: an organization's invitations newest first by
(created_at, id), one invitation with its ETag, and the lookup of a link's token digest. A
pending invitation past its expiry reads as `expired` (core-api.md 3.15).

The address, inviter and message are opened on read from the row's sealed snapshot, with the
invitation's data key fetched in the same statement from the region's PII key store. Once the
key is destroyed (revoked, declined, or accepted by a user since deleted) they read empty: the
address as "", the inviter and message as null."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
from psycopg.rows import dict_row

from authpi.crypto.pii import PiiVault
from authpi.directory.api.organization_models import Invitation
from authpi.eventstore.sqltext import render
from authpi.web.etag import etag_of
from authpi.web.pagination import SortKey, time_id_key

_STATUS = (
    "(CASE WHEN i.status = 'pending' AND i.expires_at <= %(now)s::bigint THEN 'expired'"
    " ELSE i.status END)"
)
_COLUMNS = (
    f"i.id, i.org_id, i.issuer_id, {_STATUS} AS status, i.user_id_invited, i.user_title,"
    " i.scopes, i.created_at, i.expires_at, i.accepted_at, i.declined_at, i.revoked_at,"
    " i.last_email_sent_at, i.metadata, i.updated_at, i.pii, k.wrapped_key"
)
_KEY = " LEFT JOIN {pii}.pii_keys k ON k.subject_id = i.id"


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


class InvitationQueries:
    """Reads through `vault`, the region's PII key store the directory writes keys to."""

    def __init__(self, schema: str, vault: PiiVault) -> None:
        self.vault = vault
        self._one = render(
            f"SELECT {_COLUMNS} FROM {{schema}}.invitations_view i{_KEY}"
            " WHERE i.org_id = %(org_id)s AND i.id = %(id)s",
            schema=schema,
            pii=vault.schema,
        )
        self._list = render(
            f"SELECT {_COLUMNS} FROM {{schema}}.invitations_view i{_KEY}"
            " WHERE i.org_id = %(org_id)s"
            f" AND (%(status)s::text IS NULL OR {_STATUS} = %(status)s)"
            " AND (%(after_at)s::bigint IS NULL"
            " OR (i.created_at, i.id) < (%(after_at)s::bigint, %(after_id)s))"
            " ORDER BY i.created_at DESC, i.id DESC LIMIT %(limit)s",
            schema=schema,
            pii=vault.schema,
        )
        self._link = render(
            "SELECT i.id, i.org_id, i.issuer_id, o.account_id, o.name AS org_name,"
            f" {_STATUS} AS status, i.user_title, i.pii, k.wrapped_key"
            " FROM {schema}.invitations_view i JOIN {schema}.organizations_view o"
            f" ON o.id = i.org_id{_KEY} WHERE i.token_sha256 = %(token_sha256)s",
            schema=schema,
            pii=vault.schema,
        )

    def _opened(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row with its sealed snapshot replaced by the clear fields (empty once shredded)."""
        row = dict(row)
        wrapped, sealed = row.pop("wrapped_key"), row.pop("pii")
        pii = self.vault.open_invitation_wrapped(wrapped, row["id"], sealed)
        if pii is None:
            return {**row, "email_invited": "", "inviter": None, "message": None}
        return {**row, **msgspec.structs.asdict(pii)}

    def _invitation(self, row: dict[str, Any]) -> Invitation:
        row = self._opened(row)
        row.pop("updated_at", None)
        return msgspec.convert(row, Invitation)

    async def invitation(
        self, conn: psycopg.AsyncConnection[Any], org_id: str, invitation_id: str, now: int
    ) -> tuple[Invitation, str] | None:
        """The invitation and its ETag."""
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(self._one, {"org_id": org_id, "id": invitation_id, "now": now})
        row = await cur.fetchone()
        if row is None:
            return None
        return self._invitation(row), etag_of(row["created_at"], row["updated_at"])

    async def invitations(
        self, conn: psycopg.AsyncConnection[Any], org_id: str, status: str | None,
        after: SortKey | None, limit: int, now: int,
    ) -> list[Invitation]:  # fmt: skip
        key = time_id_key(after)  # a cursor of another shape is a 400
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(self._list, {
            "org_id": org_id, "status": status, "limit": limit, "now": now,
            "after_at": key and key[0], "after_id": key and key[1]})  # fmt: skip
        return [self._invitation(r) for r in await cur.fetchall()]

    async def link(
        self, conn: psycopg.AsyncConnection[Any], token_sha256: str, now: int
    ) -> InvitationLink | None:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(self._link, {"token_sha256": token_sha256, "now": now})
        row = await cur.fetchone()
        return None if row is None else msgspec.convert(self._opened(row), InvitationLink)
