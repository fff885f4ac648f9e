"""Note commands (internal; never published). `author` is the acting console user id, or the key
id when an API key acts (core-api.md 3.20). `ref_issuers` maps the id of each issuer-scoped
resource the content references (key `type:id`) to its issuer in the account, as the handler
found it."""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType


class CreateNote(msgspec.Struct, frozen=True, kw_only=True):
    note_id: str
    account_id: str
    issuer_id: str | None
    subject_type: str
    subject_id: str
    content: str
    pinned: bool = False
    author: str
    now: int
    ref_issuers: dict[str, str] = {}


class UpdateNote(msgspec.Struct, frozen=True, kw_only=True):
    note_id: str
    account_id: str
    author: str
    now: int
    if_match: str | None = None
    content: str | UnsetType = UNSET
    pinned: bool | UnsetType = UNSET
    ref_issuers: dict[str, str] = {}


class DeleteNote(msgspec.Struct, frozen=True, kw_only=True):
    note_id: str
    account_id: str
    author: str
    now: int
    if_match: str | None = None
