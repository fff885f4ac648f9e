"""The Core API's response envelopes (core-api.md 1.4): `{"data": …}` for one resource (its only
key, so that the SDKs unwrap it; one-time secrets go inside `data`), `{"data": […], "has_more",
"next_cursor"}` for lists, and `204` with no body for deletes.

    return one(key_out, etag=etag_of(key.created_at, key.updated_at))           # GET/PATCH/action
    return one(key_out, etag=..., status=201)                                   # create
    return paginate(rows, page, "api-keys", lambda k: (k.created_at, k.id))     # list (pagination)
"""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec
from litestar import Response
from litestar.status_codes import HTTP_204_NO_CONTENT

T = TypeVar("T")


class One(msgspec.Struct, Generic[T], frozen=True):
    data: T


class Page(msgspec.Struct, Generic[T], frozen=True, omit_defaults=True):
    data: list[T]
    has_more: bool
    next_cursor: str | None  # always present; null on the last page
    # Records skipped because they could not be read; emitted only when > 0 (core-api.md 2.2).
    invalid_count: int | None = None


def one(data: T, *, etag: str | None = None, status: int = 200) -> Response[One[T]]:
    """A single-resource response; `etag` (see `authpi.web.etag`) becomes the ETag header, which
    every single-resource response carries (core-api.md 2.3)."""
    headers = {"ETag": etag} if etag is not None else None
    return Response(One(data), status_code=status, headers=headers)


def no_content() -> Response[None]:
    return Response(None, status_code=HTTP_204_NO_CONTENT)
