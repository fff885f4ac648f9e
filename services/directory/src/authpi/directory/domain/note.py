"""The Note aggregate (core-api.md 3.20): one team note on a subject of an account. Its content
is re-parsed into mentions and references on every change; a mention or reference that stays
keeps the time it first appeared. Delete is final: the stream keeps note.deleted and every later
command is a 404. A note of another account is a 404 as well."""

from __future__ import annotations

from typing import assert_never

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.directory import (
    NoteCreated,
    NoteDeleted,
    NoteMention,
    NoteReference,
    NoteUpdated,
)
from authpi.directory.domain.commands.note import CreateNote, DeleteNote, UpdateNote
from authpi.directory.domain.note_markup import ISSUER_SCOPED_REFS, mentioned_users, referenced
from authpi.errors import Conflict, NotFound
from authpi.web.etag import check_if_match, etag_of, strictly_after


class Absent(msgspec.Struct, frozen=True):
    pass


class Live(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    content: str
    pinned: bool
    mentions: list[NoteMention]
    references: list[NoteReference]
    created_at: int
    updated_at: int | None = None

    @property
    def etag(self) -> str:
        return etag_of(self.created_at, self.updated_at)


class Deleted(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str


Note = Absent | Live | Deleted
INITIAL: Note = Absent()
NoteCommand = CreateNote | UpdateNote | DeleteNote


def decide(cmd: NoteCommand, state: Note) -> list[Event]:
    match cmd, state:
        case CreateNote(), Absent():
            return [_created(cmd)]
        case CreateNote(), _:
            raise Conflict("the note already exists", reason="note.exists")
        case UpdateNote() | DeleteNote(), Live() if state.account_id == cmd.account_id:
            check_if_match(cmd.if_match, state.etag)
            return _on_live(cmd, state)
        case _:
            raise NotFound("no such note", reason="note.not_found")


def _on_live(cmd: UpdateNote | DeleteNote, note: Live) -> list[Event]:
    at = strictly_after(cmd.now, note.updated_at or note.created_at)
    match cmd:
        case UpdateNote():
            return _updated(cmd, note, at)
        case DeleteNote():
            return [NoteDeleted(id=note.id, account_id=note.account_id, deleted_by=cmd.author,
                                deleted_at=at)]  # fmt: skip
        case _:
            assert_never(cmd)


def _created(cmd: CreateNote) -> NoteCreated:
    return NoteCreated(
        id=cmd.note_id, account_id=cmd.account_id, issuer_id=cmd.issuer_id,
        subject_type=cmd.subject_type, subject_id=cmd.subject_id, content=cmd.content,
        pinned=cmd.pinned, created_by=cmd.author,
        mentions=_mentions(cmd.content, [], cmd.now),
        references=_references(cmd.content, cmd.ref_issuers, [], cmd.now),
        created_at=cmd.now,
    )  # fmt: skip


def _updated(cmd: UpdateNote, note: Live, at: int) -> list[Event]:
    content = note.content if cmd.content is msgspec.UNSET else cmd.content
    pinned = note.pinned if cmd.pinned is msgspec.UNSET else cmd.pinned
    changed = [f for f, new, old in (("content", content, note.content),
                                     ("pinned", pinned, note.pinned)) if new != old]  # fmt: skip
    if not changed:
        return []
    mentions, references = note.mentions, note.references
    if "content" in changed:
        mentions = _mentions(content, note.mentions, at)
        references = _references(content, cmd.ref_issuers, note.references, at)
    return [NoteUpdated(
        id=note.id, account_id=note.account_id, changed=changed, content=content, pinned=pinned,
        updated_by=cmd.author, mentions=mentions, references=references, updated_at=at,
    )]  # fmt: skip


def _mentions(content: str, before: list[NoteMention], at: int) -> list[NoteMention]:
    kept = {m.mentioned_user_id: m for m in before}
    return [kept.get(user_id) or NoteMention(mentioned_user_id=user_id, created_at=at)
            for user_id in mentioned_users(content)]  # fmt: skip


def _references(
    content: str, ref_issuers: dict[str, str], before: list[NoteReference], at: int
) -> list[NoteReference]:
    kept = {(r.ref_type, r.ref_id): r for r in before}
    out: list[NoteReference] = []
    for ref_type, ref_id in referenced(content):
        if (old := kept.get((ref_type, ref_id))) is not None:
            out.append(old)
            continue
        issuer = ref_issuers.get(f"{ref_type}:{ref_id}") if ref_type in ISSUER_SCOPED_REFS else None
        out.append(NoteReference(ref_type=ref_type, ref_id=ref_id, ref_issuer_id=issuer,
                                 created_at=at))  # fmt: skip
    return out


def evolve(state: Note, event: Event) -> Note:
    match state, event:
        case Absent(), NoteCreated():
            return Live(
                id=event.id, account_id=event.account_id, content=event.content,
                pinned=event.pinned, mentions=event.mentions, references=event.references,
                created_at=event.created_at,
            )  # fmt: skip
        case Live(), NoteUpdated():
            return msgspec.structs.replace(
                state, content=event.content, pinned=event.pinned, mentions=event.mentions,
                references=event.references, updated_at=event.updated_at,
            )  # fmt: skip
        case Live(), NoteDeleted():
            return Deleted(id=state.id, account_id=state.account_id)
        case _:
            return state
