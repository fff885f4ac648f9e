"""notes_view: inline projection of Note events, one row per live note (a delete removes it)."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.contracts.directory import NoteCreated, NoteDeleted, NoteUpdated
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent


class NotesView:
    name = "directory-notes"
    event_types = ("note.created", "note.updated", "note.deleted")

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._insert = render(
            "INSERT INTO {schema}.notes_view (id, account_id, issuer_id, subject_type, subject_id,"
            " content, pinned, created_by, mentions, refs, version, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s)"
            " ON CONFLICT (id) DO NOTHING",
            schema=schema,
        )
        self._update = render(
            "UPDATE {schema}.notes_view SET content = %s, pinned = %s, updated_by = %s,"
            " mentions = %s::jsonb, refs = %s::jsonb, version = %s, updated_at = %s"
            " WHERE id = %s",
            schema=schema,
        )
        self._delete = render("DELETE FROM {schema}.notes_view WHERE id = %s", schema=schema)
        self._reset = render("TRUNCATE {schema}.notes_view", schema=schema)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        v = stored.stream_version
        match stored.event:
            case NoteCreated() as e:
                await conn.execute(self._insert, [
                    e.id, e.account_id, e.issuer_id, e.subject_type, e.subject_id, e.content,
                    e.pinned, e.created_by, jsonb.dumps(e.mentions), jsonb.dumps(e.references),
                    v, e.created_at])  # fmt: skip
            case NoteUpdated() as e:
                await conn.execute(self._update, [
                    e.content, e.pinned, e.updated_by, jsonb.dumps(e.mentions),
                    jsonb.dumps(e.references), v, e.updated_at, e.id])  # fmt: skip
            case NoteDeleted() as e:
                await conn.execute(self._delete, [e.id])

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)
