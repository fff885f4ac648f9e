"""The write path of notes (core-api.md 3.20). A note's subject must live in the caller's account
(a subject of another account is a 404); user and organization subjects need their issuer, and
an issuer given for any subject must be the subject's own. The issuers of the resources a note
references are looked up here, so that the decider stays pure."""

from __future__ import annotations

from typing import Any

from authpi.contracts.base import Actor, Meta
from authpi.directory.domain import note
from authpi.directory.domain.commands.note import CreateNote, DeleteNote, UpdateNote
from authpi.directory.domain.note import NoteCommand
from authpi.directory.domain.note_markup import ISSUER_SCOPED_REFS, referenced
from authpi.directory.handlers.issuers import require_known_ids
from authpi.directory.queries.notes import NoteQueries
from authpi.errors import FieldProblem, InvalidRequest, NotFound
from authpi.eventstore.store import EventStore
from authpi.web.runtime import Runtime

# Subjects whose notes must name their issuer (core-api.md 3.20).
ISSUER_REQUIRED = frozenset({"user", "org"})


class Notes:
    def __init__(self, rt: Runtime, store: EventStore) -> None:
        self.rt = rt
        self.store = store
        self.queries = NoteQueries(store.schema)

    async def create(
        self, account_id: str, fields: dict[str, Any], *, author: str, actor: Actor
    ) -> str:
        """A new note from checked request fields (`subject_type`, `subject_id`, `issuer_id`,
        `content`, `pinned`); returns its id."""
        issuer_id = await self._subject_issuer(
            account_id, fields["subject_type"], fields["subject_id"], fields.get("issuer_id")
        )
        note_id = self.rt.ids.new("note")
        cmd = CreateNote(
            note_id=note_id, account_id=account_id, issuer_id=issuer_id,
            subject_type=fields["subject_type"], subject_id=fields["subject_id"],
            content=fields["content"], pinned=bool(fields.get("pinned")), author=author,
            now=self.rt.clock.now_ms(),
            ref_issuers=await self._ref_issuers(account_id, fields["content"]),
        )  # fmt: skip
        await self._run(cmd, actor, issuer_id)
        return note_id

    async def update(
        self, account_id: str, note_id: str, patch: dict[str, Any], *, author: str,
        actor: Actor, if_match: str | None = None,
    ) -> None:  # fmt: skip
        content = patch.get("content")
        refs = await self._ref_issuers(account_id, content) if isinstance(content, str) else {}
        cmd = UpdateNote(note_id=note_id, account_id=account_id, author=author,
                         now=self.rt.clock.now_ms(), if_match=if_match, ref_issuers=refs,
                         **patch)  # fmt: skip
        await self._run(cmd, actor)

    async def delete(
        self, account_id: str, note_id: str, *, author: str, actor: Actor,
        if_match: str | None = None,
    ) -> None:  # fmt: skip
        cmd = DeleteNote(note_id=note_id, account_id=account_id, author=author,
                         now=self.rt.clock.now_ms(), if_match=if_match)  # fmt: skip
        await self._run(cmd, actor)

    async def _subject_issuer(
        self, account_id: str, subject_type: str, subject_id: str, issuer_id: str | None
    ) -> str | None:
        if subject_type in ISSUER_REQUIRED and issuer_id is None:
            message = f"issuer_id is required for {subject_type} notes"
            problem = FieldProblem(field="issuer_id", code="required", message=message)
            raise InvalidRequest(problem.message, reason="note.issuer_required", fields=[problem])
        require_known_ids(subject_id)
        async with self.rt.pool.connection() as conn:
            found = await self.queries.subject_issuer(conn, account_id, subject_type, subject_id)
        if found is None or (issuer_id is not None and issuer_id != found):
            raise NotFound(f"no such {subject_type} in this account", reason="note.no_subject")
        return found

    async def _ref_issuers(self, account_id: str, content: str) -> dict[str, str]:
        """`type:id` -> issuer of each issuer-scoped resource the content references that the
        account holds."""
        wanted: dict[str, list[str]] = {}
        for ref_type, ref_id in referenced(content):
            if ref_type in ISSUER_SCOPED_REFS:
                wanted.setdefault(ref_type, []).append(ref_id)
        found: dict[str, str] = {}
        if not wanted:
            return found
        async with self.rt.pool.connection() as conn:
            for ref_type, ids in wanted.items():
                issuers = await self.queries.ref_issuers(conn, account_id, ref_type, ids)
                found.update({f"{ref_type}:{i}": issuer for i, issuer in issuers.items()})
        return found

    async def _run(self, cmd: NoteCommand, actor: Actor, issuer_id: str | None = None) -> None:
        require_known_ids(cmd.note_id)
        meta = Meta(
            account_id=cmd.account_id,
            issuer_id=issuer_id,
            actor=actor,
            region=self.rt.settings.region,
            subject={"account_id": cmd.account_id, "note_id": cmd.note_id},
        )
        await self.store.execute(cmd.note_id, note, cmd, meta)
