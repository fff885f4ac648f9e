"""Cursor pagination helpers (core-api.md 2.2)."""

from __future__ import annotations

import pytest

from authpi.errors import InvalidRequest
from authpi.web.pagination import (
    PageQuery,
    decode_cursor,
    encode_cursor,
    page_query,
    paginate,
)


def test_limit_defaults_to_50_and_is_checked_not_clamped():
    assert page_query().limit == 50
    assert page_query(limit=100).limit == 100
    for bad in (0, 101, -1):
        with pytest.raises(InvalidRequest) as caught:
            page_query(limit=bad)
        assert caught.value.fields[0].field == "limit"


def test_cursor_round_trips_for_its_collection_only():
    cursor = encode_cursor("users", (1781222400000, "usr_abc"))
    assert decode_cursor("users", cursor) == (1781222400000, "usr_abc")
    with pytest.raises(InvalidRequest) as caught:
        decode_cursor("issuers", cursor)
    assert caught.value.fields[0].field == "cursor"


@pytest.mark.parametrize("cursor", ["", "***", "bm90IGpzb24", "WyJ1c2VycyJd"])
def test_malformed_cursors_are_400(cursor):
    with pytest.raises(InvalidRequest):
        page_query(cursor=cursor).after("users")


def test_paginate_uses_the_extra_row_to_tell_whether_more_follow():
    query = PageQuery(limit=2)
    rows = [(3, "c"), (2, "b"), (1, "a")]
    page = paginate(rows, query, "things", lambda r: r)
    assert page.data == rows[:2] and page.has_more is True
    assert decode_cursor("things", page.next_cursor) == (2, "b")
    last = paginate(rows[2:], query, "things", lambda r: r)
    assert last.has_more is False and last.next_cursor is None


def test_fetch_limit_is_one_more_than_the_page():
    assert PageQuery(limit=10).fetch_limit == 11


@pytest.mark.parametrize("key", [("abc", "x"), (1,), (1, 2), ("x", 1, 2)])
def test_time_id_cursor_of_another_shape_is_400(key):
    cursor = encode_cursor("organizations", key)
    with pytest.raises(InvalidRequest) as caught:
        PageQuery(cursor=cursor).after_time_id("organizations")
    assert caught.value.status == 400 and caught.value.fields[0].field == "cursor"


def test_time_id_cursor_round_trips():
    cursor = encode_cursor("users", (1781222400000, "usr_x"))
    assert PageQuery(cursor=cursor).after_time_id("users") == (1781222400000, "usr_x")
    assert PageQuery().after_time_id("users") is None
