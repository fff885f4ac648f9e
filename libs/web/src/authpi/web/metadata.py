"""Checks and merge rules for free-form `metadata` and `custom_fields` (core-api.md 2.6).

Limits: at most 50 top-level keys, keys of 1-40 characters from `[A-Za-z0-9_.-]`, at most 8 KiB
serialized, nesting depth at most 5 (the object itself is depth 1). A violation is a 422 with a
`fields` entry named after the field. Call `check_metadata(data.metadata)` in the controller
before building the command.

On PATCH, a supplied object is shallow-merged into the stored one, a key set to null is removed
and `"metadata": null` clears it all: declare the request field as
`metadata: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET` and apply `merge_metadata`."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

import msgspec

from authpi.errors import FieldProblem, Unprocessable

MAX_KEYS = 50
MAX_BYTES = 8 * 1024
MAX_DEPTH = 5
_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,40}$")


def check_metadata(value: Mapping[str, Any] | None, field: str = "metadata") -> None:
    if not value:
        return
    if len(value) > MAX_KEYS:
        raise _invalid(field, "too_many_keys", f"{field} has more than {MAX_KEYS} keys")
    for key in value:
        if not _KEY.match(key):
            text = f"{field} key {key[:60]!r} must be 1-40 characters of A-Z a-z 0-9 _ . -"
            raise _invalid(field, "invalid_key", text)
    if _depth(value) > MAX_DEPTH:
        raise _invalid(field, "too_deep", f"{field} is nested deeper than {MAX_DEPTH} levels")
    if len(msgspec.json.encode(value)) > MAX_BYTES:
        raise _invalid(field, "too_large", f"{field} is larger than {MAX_BYTES} bytes")


def check_custom_fields(value: Mapping[str, Any] | None) -> None:
    check_metadata(value, "custom_fields")


def merge_metadata(
    stored: Mapping[str, Any], patch: Mapping[str, Any] | msgspec.UnsetType | None
) -> dict[str, Any]:
    """The PATCH rule: UNSET keeps, None clears, an object shallow-merges (null removes a key)."""
    if patch is msgspec.UNSET:
        return dict(stored)
    if patch is None:
        return {}
    merged = {**stored, **patch}
    return {k: v for k, v in merged.items() if v is not None}


def _depth(value: object) -> int:
    """Depth of nested objects and arrays; scalars add nothing."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, Mapping):
            children: list[object] = list(cast("Mapping[object, object]", item).values())
        elif isinstance(item, list | tuple):
            children = list(cast("Sequence[object]", item))
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def _invalid(field: str, code: str, message: str) -> Unprocessable:
    problem = FieldProblem(field=field, code=code, message=message)
    return Unprocessable(message, reason=f"metadata.{code}", fields=[problem])
