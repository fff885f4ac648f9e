"""Notes over HTTP (core-api.md 3.20, contract 4.9 and 5.14): list (pinned first, then newest
first, with the compound cursor `pinned:timestamp:id`), create, count, backlinks, get, update and
delete. `count` and `backlinks` are declared before `{note_id}` (contract 1.1). Scopes
`notes:read|write|delete`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Response, Router, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from authpi.directory.domain.note_markup import REF_TYPES, SUBJECT_TYPES
from authpi.directory.handlers.issuers import require_known_ids
from authpi.directory.handlers.notes import ISSUER_REQUIRED, Notes
from authpi.directory.queries.notes import NoteFilters, NoteKey, NoteRow
from authpi.errors import FieldProblem, InvalidRequest, NotFound, Unprocessable
from authpi.web.core import provide
from authpi.web.envelopes import One, Page, no_content, one
from authpi.web.etag import etag_of
from authpi.web.guards import require_scope
from authpi.web.pagination import InjectedPage
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal, Principal
from authpi.web.text import check_storable

NOTES = "/v1/accounts/{account_id:str}/notes"
NOTE = NOTES + "/{note_id:str}"
TAGS = ["Notes"]
SubjectType = Literal["user", "org", "issuer", "client", "agent"]
Content = Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]  # rec. limit (3.20)
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
UNSET = msgspec.UNSET
Unset = msgspec.UnsetType


class NoteCreate(msgspec.Struct, frozen=True, kw_only=True):
    subject_type: SubjectType
    subject_id: Id
    content: Content
    issuer_id: Id | None = None
    pinned: bool | None = None


class NotePatch(msgspec.Struct, frozen=True, kw_only=True):
    content: Content | Unset | None = UNSET
    pinned: bool | Unset | None = UNSET


class MentionOut(msgspec.Struct, frozen=True, kw_only=True):
    mentioned_user_id: str
    created_at: int


class ReferenceOut(msgspec.Struct, frozen=True, kw_only=True):
    ref_type: str
    ref_id: str
    ref_issuer_id: str | None
    created_at: int


class NoteOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    issuer_id: str | None
    subject_type: str
    subject_id: str
    content: str
    pinned: bool
    created_by: str
    updated_by: str | None
    created_at: int
    updated_at: int | None
    mentions: list[MentionOut]
    references: list[ReferenceOut]

    @classmethod
    def of(cls, row: NoteRow) -> NoteOut:
        return cls(
            id=row.id, account_id=row.account_id, issuer_id=row.issuer_id,
            subject_type=row.subject_type, subject_id=row.subject_id, content=row.content,
            pinned=row.pinned, created_by=row.created_by, updated_by=row.updated_by,
            created_at=row.created_at, updated_at=row.updated_at,
            mentions=msgspec.convert(row.mentions, list[MentionOut]),
            references=msgspec.convert(row.refs, list[ReferenceOut]),
        )  # fmt: skip


class NotesCount(msgspec.Struct, frozen=True):
    count: int


def _bad(field: str, code: str, message: str) -> InvalidRequest:
    problem = FieldProblem(field=field, code=code, message=message)
    return InvalidRequest(message, reason=f"note.query.{field}", fields=[problem])


def _choice(field: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        raise _bad(field, "invalid_value", f"{field} must be one of {', '.join(allowed)}")
    return value


def _required(field: str, value: str | None) -> str:
    if not value:
        raise _bad(field, "required", f"{field} is required")
    return value


def _flag(field: str, value: str | None) -> bool | None:
    """Boolean query filters are the literal strings `true` / `false` (core-api.md 2.2)."""
    if value is None:
        return None
    if value not in ("true", "false"):
        raise _bad(field, "invalid_value", f"{field} must be true or false")
    return value == "true"


def cursor_of(row: NoteRow) -> str:
    return f"{int(row.pinned)}:{row.created_at}:{row.id}"


def parse_cursor(cursor: str) -> NoteKey:
    """`pinned:timestamp` (pinned 0|1, epoch ms), optionally followed by `:id` for ties."""
    pinned, _, rest = cursor.partition(":")
    at, _, note_id = rest.partition(":")
    if pinned not in ("0", "1") or not at.isascii() or not at.isdigit() or len(at) > 18:
        raise _bad("cursor", "invalid_value", "cursor is not a cursor of this list")
    if len(note_id) > 200 or (note_id and not note_id.isprintable()):
        raise _bad("cursor", "invalid_value", "cursor is not a cursor of this list")
    return NoteKey(pinned=pinned == "1", created_at=int(at), id=note_id)


def author_of(principal: Principal) -> str:
    """The acting console user id, or the key id when an API key acts (core-api.md 3.20)."""
    return principal.user_id or principal.key_id or principal.token_id or principal.type


async def note_row(notes: Notes, account_id: str, note_id: str) -> NoteRow:
    require_known_ids(note_id)
    async with notes.rt.pool.connection() as conn:
        row = await notes.queries.note(conn, account_id, note_id)
    if row is None:
        raise NotFound("no such note", reason="note.not_found")
    return row


def _response(row: NoteRow, status: int = 200) -> Response[One[NoteOut]]:
    return one(NoteOut.of(row), etag=etag_of(row.created_at, row.updated_at), status=status)


def _check_content(content: object) -> None:
    if isinstance(content, str) and not content.strip():
        problem = FieldProblem(field="content", code="invalid_value",
                               message="content must not be blank")  # fmt: skip
        raise Unprocessable(problem.message, reason="note.blank", fields=[problem])


@get(NOTES, operation_id="listNotes", summary="List Notes", tags=TAGS,
     guards=[require_scope("notes:read")])  # fmt: skip
async def list_notes(
    account_id: FromPath[str],
    page: InjectedPage,
    notes: NamedDependency[Notes],
    subject_type: FromQuery[str | None] = None,
    subject_id: FromQuery[str | None] = None,
    issuer_id: FromQuery[str | None] = None,
    created_by: FromQuery[str | None] = None,
    pinned: FromQuery[str | None] = None,
    mentions_user_id: FromQuery[str | None] = None,
) -> Page[NoteOut]:
    subject_type = _choice("subject_type", subject_type, SUBJECT_TYPES)
    if subject_id is not None and subject_type is None:
        raise _bad("subject_type", "required", "subject_id requires subject_type")
    if subject_type in ISSUER_REQUIRED and issuer_id is None:
        raise _bad("issuer_id", "required", f"issuer_id is required for {subject_type} notes")
    filters = NoteFilters(
        subject_type=subject_type, subject_id=subject_id, issuer_id=issuer_id,
        created_by=created_by, pinned=_flag("pinned", pinned), mentions_user_id=mentions_user_id,
    )  # fmt: skip
    after = None if page.cursor is None else parse_cursor(page.cursor)
    async with notes.rt.pool.connection() as conn:
        rows = await notes.queries.notes(conn, account_id, filters, after, page.fetch_limit)
    items = rows[: page.limit]
    has_more = len(rows) > page.limit
    return Page(
        data=[NoteOut.of(r) for r in items],
        has_more=has_more,
        next_cursor=cursor_of(items[-1]) if has_more and items else None,
    )


@post(NOTES, operation_id="createNote", summary="Create Note", tags=TAGS,
      guards=[require_scope("notes:write")])  # fmt: skip
async def create_note(
    account_id: FromPath[str],
    data: JSONBody[NoteCreate],
    principal: InjectedPrincipal,
    notes: NamedDependency[Notes],
) -> Response[One[NoteOut]]:
    check_storable(data)
    _check_content(data.content)
    note_id = await notes.create(
        account_id, msgspec.structs.asdict(data), author=author_of(principal),
        actor=principal.actor(),
    )  # fmt: skip
    return _response(await note_row(notes, account_id, note_id), status=201)


@get(NOTES + "/count", operation_id="countNotes", summary="Count Notes", tags=TAGS,
     guards=[require_scope("notes:read")])  # fmt: skip
async def count_notes(
    account_id: FromPath[str],
    notes: NamedDependency[Notes],
    subject_type: FromQuery[str | None] = None,
    subject_id: FromQuery[str | None] = None,
) -> One[NotesCount]:
    kind = _required("subject_type", _choice("subject_type", subject_type, SUBJECT_TYPES))
    subject = _required("subject_id", subject_id)
    async with notes.rt.pool.connection() as conn:
        count = await notes.queries.count(conn, account_id, kind, subject)
    return One(NotesCount(count))


@get(NOTES + "/backlinks", operation_id="getNoteBacklinks", summary="Get Note Backlinks",
     tags=TAGS, guards=[require_scope("notes:read")])  # fmt: skip
async def note_backlinks(
    account_id: FromPath[str],
    page: InjectedPage,
    notes: NamedDependency[Notes],
    ref_type: FromQuery[str | None] = None,
    ref_id: FromQuery[str | None] = None,
) -> One[list[NoteOut]]:
    kind = _required("ref_type", _choice("ref_type", ref_type, REF_TYPES))
    target = _required("ref_id", ref_id)
    async with notes.rt.pool.connection() as conn:
        rows = await notes.queries.backlinks(conn, account_id, kind, target, page.limit)
    return One([NoteOut.of(r) for r in rows])


@get(NOTE, operation_id="getNote", summary="Get Note", tags=TAGS,
     guards=[require_scope("notes:read")])  # fmt: skip
async def get_note(
    account_id: FromPath[str], note_id: FromPath[str], notes: NamedDependency[Notes]
) -> Response[One[NoteOut]]:
    return _response(await note_row(notes, account_id, note_id))


@patch(NOTE, operation_id="updateNote", summary="Update Note", tags=TAGS,
       guards=[require_scope("notes:write")])  # fmt: skip
async def update_note(
    account_id: FromPath[str],
    note_id: FromPath[str],
    data: JSONBody[NotePatch],
    principal: InjectedPrincipal,
    notes: NamedDependency[Notes],
    if_match: IfMatch = None,
) -> Response[One[NoteOut]]:
    check_storable(data)
    _check_content(data.content)
    # `null` leaves a field as it is: content is required and pinned a boolean (5.14).
    fields: dict[str, Any] = {"content": data.content, "pinned": data.pinned}
    patch_ = {k: v for k, v in fields.items() if v is not UNSET and v is not None}
    await notes.update(account_id, note_id, patch_, author=author_of(principal),
                       actor=principal.actor(), if_match=if_match)  # fmt: skip
    return _response(await note_row(notes, account_id, note_id))


@delete(NOTE, operation_id="deleteNote", summary="Delete Note", tags=TAGS,
        guards=[require_scope("notes:delete")], status_code=204)  # fmt: skip
async def delete_note(
    account_id: FromPath[str],
    note_id: FromPath[str],
    principal: InjectedPrincipal,
    notes: NamedDependency[Notes],
    if_match: IfMatch = None,
) -> Response[None]:
    await notes.delete(account_id, note_id, author=author_of(principal), actor=principal.actor(),
                       if_match=if_match)  # fmt: skip
    return no_content()


def notes_router(notes: Notes) -> Router:
    return Router(
        "/",
        route_handlers=[list_notes, create_note, count_notes, note_backlinks, get_note,
                        update_note, delete_note],
        dependencies={"notes": provide(notes)},
    )  # fmt: skip
