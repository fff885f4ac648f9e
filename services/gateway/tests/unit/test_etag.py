"""ETag rendering and RFC 9110 If-Match matching (core-api.md 2.3)."""

from __future__ import annotations

import pytest

from authpi.errors import PreconditionFailed
from authpi.web.etag import check_if_match, etag_of, if_match_satisfied, strictly_after


def test_etag_is_the_quoted_update_time_or_creation_time():
    assert etag_of(1000, None) == '"1000"'
    assert etag_of(1000, 2000) == '"2000"'


def test_updated_at_strictly_increases():
    assert strictly_after(5000, 4000) == 5000
    assert strictly_after(5000, 5000) == 5001
    assert strictly_after(4999, 5000) == 5001


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (None, True),
        ("*", True),
        ('"2000"', True),
        ('"1", "2000"', True),
        ('"1"', False),
        ('W/"2000"', False),
        ("2000", False),
        ("", False),
    ],
)
def test_if_match_uses_strong_comparison(header, ok):
    assert if_match_satisfied(header, '"2000"') is ok


def test_mismatch_raises_412_with_the_current_etag():
    with pytest.raises(PreconditionFailed) as caught:
        check_if_match('"1"', '"2000"')
    assert caught.value.status == 412
    assert caught.value.current_etag == '"2000"'
