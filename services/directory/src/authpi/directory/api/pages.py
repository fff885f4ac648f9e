"""The list envelope of the API layer's read models: a page of rows from `paginate`, rendered
item by item into the response model (same `has_more` and `next_cursor`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from authpi.web.envelopes import Page

R = TypeVar("R")
T = TypeVar("T")


def rendered(listed: Page[R], render: Callable[[R], T]) -> Page[T]:
    return Page(
        data=[render(r) for r in listed.data],
        has_more=listed.has_more,
        next_cursor=listed.next_cursor,
    )
