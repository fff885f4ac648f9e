"""A request-wide check for strings PostgreSQL cannot store: NUL characters (text and jsonb refuse
them) and lone surrogates (not encodable as UTF-8). Such input is a 422, never a 500."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import msgspec

from authpi.errors import FieldProblem, Unprocessable


def check_storable(body: Any) -> None:
    """Walk the decoded request (keys and values) and refuse unstorable strings."""
    stack: list[tuple[object, str]] = [(msgspec.to_builtins(body), "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            _check(value, path or "body")
        elif isinstance(value, Mapping):
            for key, item in cast("Mapping[object, object]", value).items():
                _check(str(key), path or "body")
                stack.append((item, f"{path}.{key}" if path else str(key)))
        elif isinstance(value, list | tuple):
            items = cast("Sequence[object]", value)
            stack.extend((item, f"{path}.{i}") for i, item in enumerate(items))


def _check(text: str, field: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _refuse(field, "is not valid Unicode text") from None
    if "\x00" in text:
        raise _refuse(field, "must not contain NUL characters")


def _refuse(field: str, text: str) -> Unprocessable:
    problem = FieldProblem(field=field, code="invalid_value", message=f"{field} {text}")
    return Unprocessable(problem.message, reason="body.unstorable_text", fields=[problem])
