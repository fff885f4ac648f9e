"""Public ids in request paths: which ones can name anything at all (when an id was minted is
`crypto.ids.minted_at`, for the issuer gate's wait on fresh issuers)."""

from __future__ import annotations

from authpi.errors import NotFound


def require_known_id(value: str) -> None:
    """Path ids PostgreSQL cannot hold (NUL, lone surrogates) or that are absurdly long name
    nothing: 404, never a 500."""
    if len(value) > 200 or "\x00" in value or not value.isprintable():
        raise NotFound("no such resource", reason="path.unknown_id")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise NotFound("no such resource", reason="path.unknown_id") from None
