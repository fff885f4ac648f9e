"""Cursor pagination (core-api.md 2.2): `limit` 1..100 (default 50), an opaque `cursor`, lists
newest first by (`created_at`, id) unless the spec says otherwise.

A list handler declares `page: InjectedPage` (the Core API app's `page` dependency, which reads
and checks the `limit` and `cursor` query parameters), fetches `page.fetch_limit` rows after
`page.after("<collection>")` in its sort order, and returns `paginate(...)`:

    @get("/v1/accounts/{account_id:str}/api-keys", operation_id="listAccountApiKeys", ...)
    async def list_keys(account_id: FromPath[str], page: InjectedPage) -> Page[ApiKeyListItem]:
        rows = await queries.api_keys(conn, account_id, page.after("api-keys"), page.fetch_limit)
        return paginate(rows, page, "api-keys", lambda k: (k.created_at, k.id))

A cursor is base64url of the JSON array `[collection, *sort key of the last item]`; a cursor of
another collection, or any other malformed value, is a 400 with a `fields` entry for `cursor`."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import TypeAlias, TypeVar

import msgspec
from litestar.di import NamedDependency
from litestar.params import FromQuery

from authpi.errors import FieldProblem, InvalidRequest
from authpi.web.envelopes import Page
from authpi.web.text import storable

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 100

SortKey = tuple[str | int, ...]
_cursor_decoder = msgspec.json.Decoder(list[str | int])


class PageQuery(msgspec.Struct, frozen=True):
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    @property
    def fetch_limit(self) -> int:
        """Rows to fetch: one more than the page, to learn whether another page follows."""
        return self.limit + 1

    def after(self, collection: str) -> SortKey | None:
        """The sort key of the last item already returned, or None for the first page."""
        return None if self.cursor is None else decode_cursor(collection, self.cursor)

    def after_time_id(self, collection: str) -> TimeIdKey | None:
        """`after()` for lists sorted by (epoch-ms time, id): a cursor of another shape is a
        400, never a failure further down."""
        return time_id_key(self.after(collection))


TimeIdKey = tuple[int, str]


def time_id_key(key: SortKey | None) -> TimeIdKey | None:
    if key is None:
        return None
    if len(key) != 2 or not isinstance(key[0], int) or not isinstance(key[1], str):
        raise _bad("cursor", "invalid_value", "cursor is invalid")
    return key[0], key[1]


def page_query(
    limit: FromQuery[int | None] = None, cursor: FromQuery[str | None] = None
) -> PageQuery:
    """The `page` dependency: checks `limit` (no silent clamping) and keeps the raw cursor."""
    if limit is None:
        limit = DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise _bad("limit", "out_of_range", f"limit must be between 1 and {MAX_LIMIT}")
    if cursor is not None and not cursor:
        raise _bad("cursor", "invalid_value", "cursor must not be empty")
    return PageQuery(limit=limit, cursor=cursor)


# A handler parameter named `page` with this type receives the checked page query.
InjectedPage: TypeAlias = NamedDependency[PageQuery]


def encode_cursor(collection: str, key: Sequence[str | int]) -> str:
    raw = msgspec.json.encode([collection, *key])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(collection: str, cursor: str) -> SortKey:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = _cursor_decoder.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        values = []
    if len(values) < 2 or values[0] != collection:
        raise _bad("cursor", "invalid_value", "cursor is not a cursor of this list")
    if not all(_sortable(v) for v in values[1:]):
        # Only the server writes cursors; this one was forged, and PostgreSQL would refuse it.
        raise _bad("cursor", "invalid_value", "cursor is invalid")
    return tuple(values[1:])


def _sortable(value: str | int) -> bool:
    """A sort-key value PostgreSQL can compare: a bigint, or text without NUL."""
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return storable(value)


def paginate(
    rows: Sequence[T], query: PageQuery, collection: str, key: Callable[[T], SortKey]
) -> Page[T]:
    """The list envelope from up to `query.fetch_limit` rows in sort order."""
    items = list(rows[: query.limit])
    has_more = len(rows) > query.limit
    next_cursor = encode_cursor(collection, key(items[-1])) if has_more and items else None
    return Page(data=items, has_more=has_more, next_cursor=next_cursor)


def _bad(field: str, code: str, message: str) -> InvalidRequest:
    problem = FieldProblem(field=field, code=code, message=message)
    return InvalidRequest(message, reason=f"page.{field}", fields=[problem])
