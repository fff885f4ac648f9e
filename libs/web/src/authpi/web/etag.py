"""ETags and `If-Match` (core-api.md 2.3). Pure: no web-framework imports, so deciders can use it.

* The ETag of a resource is its `updated_at` in epoch ms (`created_at` before the first update),
  quoted and strong: `"1709139600000"`. `strictly_after` keeps `updated_at` strictly increasing,
  so that two versions never share an ETag.
* `If-Match` is optional. It must be compared inside the write transaction, against the state the
  decider folded, or a concurrent write could slip in between check and append: pass the header
  value in the command and call `check_if_match` in `decide` (after the resource was found: a
  missing resource is a 404, never a 412). A mismatch raises 412 `precondition_failed` carrying
  `current_etag`.
* Matching is RFC 9110's strong comparison: `*` matches any existing resource, a list matches if
  any entry does, a weak tag (`W/"…"`) never matches."""

from __future__ import annotations

import re

from authpi.errors import PreconditionFailed

_TAG = re.compile(r'(W/)?"([^"]*)"')


def etag_of(created_at: int, updated_at: int | None) -> str:
    return f'"{updated_at if updated_at is not None else created_at}"'


def strictly_after(now_ms: int, last_ms: int) -> int:
    """The `updated_at` for a change made at `now_ms` to a resource last changed at `last_ms`."""
    return max(now_ms, last_ms + 1)


def if_match_satisfied(if_match: str | None, current: str) -> bool:
    if if_match is None or if_match.strip() == "*":
        return True
    return any(not weak and f'"{tag}"' == current for weak, tag in _TAG.findall(if_match))


def check_if_match(if_match: str | None, current: str) -> None:
    if not if_match_satisfied(if_match, current):
        raise PreconditionFailed(
            "the resource has been modified since the provided ETag; fetch it again and retry",
            reason="etag.mismatch",
            current_etag=current,
        )
