"""Read-side SQL over notes_view, and the lookups a note write makes first: the subject in the
caller's account (with its issuer) and the issuers of the resources its content references.
Lists are pinned first, then newest first by (created_at, id); a null filter selects everything."""

from __future__ import annotations

from typing import Any, LiteralString

import msgspec
import psycopg
from psycopg.rows import class_row

from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render


class NoteRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    issuer_id: str | None
    subject_type: str
    subject_id: str
    content: str
    pinned: bool
    created_by: str
    updated_by: str | None
    mentions: list[dict[str, Any]]
    refs: list[dict[str, Any]]
    created_at: int
    updated_at: int | None


class NoteFilters(msgspec.Struct, frozen=True, kw_only=True):
    subject_type: str | None = None
    subject_id: str | None = None
    issuer_id: str | None = None
    created_by: str | None = None
    pinned: bool | None = None
    mentions_user_id: str | None = None


class NoteKey(msgspec.Struct, frozen=True):
    """Where a page starts: after (pinned, created_at, id) in list order. An empty id starts
    after every note with that pinned flag and time (the cursor `pinned:timestamp`)."""

    pinned: bool
    created_at: int
    id: str = ""


_COLUMNS = (
    "id, account_id, issuer_id, subject_type, subject_id, content, pinned, created_by,"
    " updated_by, mentions, refs, created_at, updated_at"
)
_ORDER = " ORDER BY pinned DESC, created_at DESC, id DESC LIMIT %(limit)s"

# The subject of a note, by type: its issuer when it lives in the account (deleted ones do not).
_SUBJECTS: dict[str, LiteralString] = {
    "user": "SELECT issuer_id FROM {schema}.users_view WHERE id = %(id)s"
    " AND account_id = %(account_id)s AND status <> 'deleted'",
    "org": "SELECT issuer_id FROM {schema}.organizations_view WHERE id = %(id)s"
    " AND account_id = %(account_id)s AND status IN ('active', 'suspended')",
    "issuer": "SELECT id FROM {schema}.issuers_view WHERE id = %(id)s"
    " AND account_id = %(account_id)s AND status <> 'deleted'",
    "client": "SELECT c.issuer_id FROM {schema}.clients_view c"
    " JOIN {schema}.issuers_view i ON i.id = c.issuer_id"
    " WHERE c.id = %(id)s AND i.account_id = %(account_id)s AND c.status <> 'deleted'",
    "agent": "SELECT issuer_id FROM {schema}.agents_view WHERE id = %(id)s"
    " AND account_id = %(account_id)s AND status <> 'deleted'",
}


# The issuers of several resources of the account at once, for the references of a note.
_REF_ISSUERS: dict[str, LiteralString] = {
    "user": "SELECT id, issuer_id FROM {schema}.users_view WHERE id = ANY(%(ids)s)"
    " AND account_id = %(account_id)s AND status <> 'deleted'",
    "org": "SELECT id, issuer_id FROM {schema}.organizations_view WHERE id = ANY(%(ids)s)"
    " AND account_id = %(account_id)s AND status IN ('active', 'suspended')",
    "client": "SELECT c.id, c.issuer_id FROM {schema}.clients_view c"
    " JOIN {schema}.issuers_view i ON i.id = c.issuer_id"
    " WHERE c.id = ANY(%(ids)s) AND i.account_id = %(account_id)s AND c.status <> 'deleted'",
}


class NoteQueries:
    def __init__(self, schema: str) -> None:
        self._note = render(
            f"SELECT {_COLUMNS} FROM {{schema}}.notes_view"
            " WHERE id = %(id)s AND account_id = %(account_id)s",
            schema=schema,
        )
        self._notes = render(
            f"SELECT {_COLUMNS} FROM {{schema}}.notes_view WHERE account_id = %(account_id)s"
            " AND (%(subject_type)s::text IS NULL OR subject_type = %(subject_type)s)"
            " AND (%(subject_id)s::text IS NULL OR subject_id = %(subject_id)s)"
            " AND (%(issuer_id)s::text IS NULL OR issuer_id = %(issuer_id)s)"
            " AND (%(created_by)s::text IS NULL OR created_by = %(created_by)s)"
            " AND (%(pinned)s::boolean IS NULL OR pinned = %(pinned)s)"
            " AND (%(mention)s::jsonb IS NULL OR mentions @> %(mention)s::jsonb)"
            " AND (%(after_at)s::bigint IS NULL OR (pinned, created_at, id)"
            " < (%(after_pinned)s::boolean, %(after_at)s::bigint, %(after_id)s::text))" + _ORDER,
            schema=schema,
        )
        self._backlinks = render(
            f"SELECT {_COLUMNS} FROM {{schema}}.notes_view WHERE account_id = %(account_id)s"
            " AND refs @> %(ref)s::jsonb" + _ORDER,
            schema=schema,
        )
        self._count = render(
            "SELECT count(*) FROM {schema}.notes_view WHERE account_id = %(account_id)s"
            " AND subject_type = %(subject_type)s AND subject_id = %(subject_id)s",
            schema=schema,
        )
        self._subjects = {t: render(q, schema=schema) for t, q in _SUBJECTS.items()}
        self._ref_issuers = {t: render(q, schema=schema) for t, q in _REF_ISSUERS.items()}

    async def note(
        self, conn: psycopg.AsyncConnection[Any], account_id: str, note_id: str
    ) -> NoteRow | None:
        cur = conn.cursor(row_factory=class_row(NoteRow))
        await cur.execute(self._note, {"id": note_id, "account_id": account_id})
        return await cur.fetchone()

    async def notes(
        self, conn: psycopg.AsyncConnection[Any], account_id: str, filters: NoteFilters,
        after: NoteKey | None, limit: int,
    ) -> list[NoteRow]:  # fmt: skip
        mention = filters.mentions_user_id
        params: dict[str, Any] = {
            **msgspec.structs.asdict(filters),
            "account_id": account_id,
            "mention": None if mention is None else jsonb.dumps([{"mentioned_user_id": mention}]),
            "after_pinned": None if after is None else after.pinned,
            "after_at": None if after is None else after.created_at,
            "after_id": None if after is None else after.id,
            "limit": limit,
        }
        cur = conn.cursor(row_factory=class_row(NoteRow))
        await cur.execute(self._notes, params)
        return await cur.fetchall()

    async def backlinks(
        self, conn: psycopg.AsyncConnection[Any], account_id: str, ref_type: str, ref_id: str,
        limit: int,
    ) -> list[NoteRow]:  # fmt: skip
        ref = jsonb.dumps([{"ref_type": ref_type, "ref_id": ref_id}])
        cur = conn.cursor(row_factory=class_row(NoteRow))
        await cur.execute(self._backlinks, {"account_id": account_id, "ref": ref, "limit": limit})
        return await cur.fetchall()

    async def count(
        self, conn: psycopg.AsyncConnection[Any], account_id: str, subject_type: str,
        subject_id: str,
    ) -> int:  # fmt: skip
        params = {"account_id": account_id, "subject_type": subject_type,
                  "subject_id": subject_id}  # fmt: skip
        cur = await conn.execute(self._count, params)
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def subject_issuer(
        self, conn: psycopg.AsyncConnection[Any], account_id: str, subject_type: str,
        subject_id: str,
    ) -> str | None:  # fmt: skip
        """The issuer of a live subject of the account (an issuer's own id for an issuer), or
        None when the account holds no such subject."""
        cur = await conn.execute(
            self._subjects[subject_type], {"id": subject_id, "account_id": account_id}
        )
        row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def ref_issuers(
        self, conn: psycopg.AsyncConnection[Any], account_id: str, ref_type: str, ids: list[str]
    ) -> dict[str, str]:
        """id -> issuer of the live resources of type `ref_type` (user, org, client) among
        `ids` that the account holds."""
        cur = await conn.execute(
            self._ref_issuers[ref_type], {"ids": ids, "account_id": account_id}
        )
        return {str(row[0]): str(row[1]) for row in await cur.fetchall()}
