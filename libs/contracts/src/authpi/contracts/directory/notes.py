"""Note events (core-api.md 3.20): internal team notes attached to a user, organization, issuer,
client or agent of an account. They are audit-only and not in the webhook catalogue
(platform.md 6.3 lists no note type). Each event carries the note as it is after the change,
with the mentions and references parsed from its content."""

from __future__ import annotations

import msgspec

from authpi.contracts.base import Event


class NoteMention(msgspec.Struct, frozen=True, kw_only=True):
    """`@[Display Name](user_id)` in the content; `created_at`: when the mention first appeared."""

    mentioned_user_id: str
    created_at: int


class NoteReference(msgspec.Struct, frozen=True, kw_only=True):
    """`[[type:id]]` or `[[type:id|text]]` in the content; `ref_issuer_id` is the issuer of an
    issuer-scoped resource (user, org, client) when the account holds it, else None."""

    ref_type: str  # user | org | issuer | client | webhook | api_key
    ref_id: str
    ref_issuer_id: str | None = None
    created_at: int


class NoteCreated(Event, frozen=True, kw_only=True, tag="note.created"):
    id: str
    account_id: str
    issuer_id: str | None = None
    subject_type: str  # user | org | issuer | client | agent
    subject_id: str
    content: str
    pinned: bool = False
    created_by: str
    mentions: list[NoteMention] = []
    references: list[NoteReference] = []
    created_at: int


class NoteUpdated(Event, frozen=True, kw_only=True, tag="note.updated"):
    id: str
    account_id: str
    changed: list[str]
    content: str
    pinned: bool
    updated_by: str
    mentions: list[NoteMention] = []
    references: list[NoteReference] = []
    updated_at: int


class NoteDeleted(Event, frozen=True, kw_only=True, tag="note.deleted"):
    id: str
    account_id: str
    deleted_by: str
    deleted_at: int


NoteEvent = NoteCreated | NoteUpdated | NoteDeleted
