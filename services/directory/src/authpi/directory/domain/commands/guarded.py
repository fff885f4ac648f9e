"""The fields every action on a stored API key or personal token carries (internal; never
published): its account, the handler's time, the request's `If-Match` (compared with the folded
state, authpi.web.etag) and the caller's scopes (the grant-subset rule, domain/grant_subset.py)."""

from __future__ import annotations

import msgspec


class Guarded(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    now: int
    if_match: str | None = None
    held: frozenset[str] | None = None  # the caller's scopes (domain/grant_subset.py)


class Noted(Guarded, frozen=True, kw_only=True):
    """A status change with the caller's optional note of why and by whom (core-api.md 3.4)."""

    status_reason: str | None = None
    status_by: str | None = None
