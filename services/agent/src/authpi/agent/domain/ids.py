"""Public ids in request paths: which ones can name anything at all, and when an id generated as
a base36 UUIDv7 (platform.md OP-1) was minted, for the issuer gate's wait on fresh issuers."""

from __future__ import annotations

import re

from authpi.errors import NotFound

_BASE36_ID = re.compile(r"[a-z]+_([0-9a-z]{25})")


def minted_at(public_id: str) -> int | None:
    """The creation time (epoch ms) of an id generated as a base36 UUIDv7, else None."""
    match = _BASE36_ID.fullmatch(public_id)
    if match is None:
        return None
    value = int(match[1], 36)
    if value >> 128 or (value >> 76) & 0xF != 7:
        return None
    return value >> 80


def require_known_id(value: str) -> None:
    """Path ids PostgreSQL cannot hold (NUL, lone surrogates) or that are absurdly long name
    nothing: 404, never a 500."""
    if len(value) > 200 or "\x00" in value or not value.isprintable():
        raise NotFound("no such resource", reason="path.unknown_id")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise NotFound("no such resource", reason="path.unknown_id") from None
