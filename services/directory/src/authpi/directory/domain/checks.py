"""Small pure value checks shared by the issuer and client settings rules. Each failure is a 422
with one `fields` entry (core-api.md 2.1), named by its dotted path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import msgspec

from authpi.errors import FieldProblem, Unprocessable

# The hard cap on any token lifetime (idp-api.md 11.7).
MAX_TOKEN_TTL = 21 * 24 * 3600
SIGNING_ALGS = ("ES256", "EdDSA", "RS256")


def invalid(field: str, message: str, code: str = "invalid_value") -> Unprocessable:
    problem = FieldProblem(field=field, code=code, message=f"{field} {message}")
    return Unprocessable(problem.message, reason=f"settings.{code}", fields=[problem])


def obj(value: Any, field: str) -> dict[str, Any]:
    """An optional object: None is empty; anything else but an object is refused."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise invalid(field, "must be an object", "invalid_type")
    return dict(cast("Mapping[str, Any]", value))


def integer(value: Any, field: str, low: int, high: int, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(field, "must be an integer", "invalid_type")
    if not low <= value <= high:
        raise invalid(field, f"must be between {low} and {high}", "out_of_range")
    return value


def choice(value: Any, field: str, allowed: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    if value not in allowed:
        raise invalid(field, f"must be one of {', '.join(allowed)}")
    return str(value)


def strings(value: Any, field: str, *, max_items: int = 100, max_len: int = 200) -> list[str]:
    """An optional list of distinct non-empty strings without whitespace, order kept."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid(field, "must be an array of strings", "invalid_type")
    items = cast("list[object]", value)
    if len(items) > max_items:
        raise invalid(field, f"has more than {max_items} items", "too_many")
    out: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item or len(item) > max_len:
            raise invalid(f"{field}.{i}", f"must be a string of 1-{max_len} characters")
        if any(c.isspace() or ord(c) < 32 for c in item):
            raise invalid(f"{field}.{i}", "must not contain whitespace or control characters")
        if item not in out:
            out.append(item)
    return out


def ttl(value: Any, field: str, default: int) -> int:
    return integer(value, field, 60, MAX_TOKEN_TTL, default)


def deep_merge(stored: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """PATCH rule for settings objects: objects merge recursively, a null removes the key (its
    default applies again), anything else replaces."""
    merged = dict(stored)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], cast("Mapping[str, Any]", value))
        else:
            merged[key] = value
    return merged


def limited_size(value: Mapping[str, Any], field: str, max_bytes: int = 32 * 1024) -> None:
    if len(msgspec.json.encode(value)) > max_bytes:
        raise invalid(field, f"is larger than {max_bytes} bytes", "too_large")


# Names of settings that hold a secret. Events carry none (STYLE.md 4, platform.md 6.3), so such a
# key is refused wherever it sits: in an object, a list, or any mix of them, at any depth.
_SECRET_NAMES = ("secret", "password", "passphrase", "private_key", "privatekey")


def secret_free(value: Any, field: str) -> None:
    """Refuse (422) any object key naming a secret, anywhere inside `value`. Iterative, so that
    depth costs no recursion."""
    stack: list[tuple[str, Any]] = [(field, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, Mapping):
            for key, inner in cast("Mapping[Any, Any]", item).items():
                name = str(key).lower().replace("-", "_")
                if any(secret in name for secret in _SECRET_NAMES):
                    raise invalid(f"{path}.{key}", "must not be a secret")
                stack.append((f"{path}.{key}", inner))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}.{i}", inner) for i, inner in enumerate(cast("list[Any]", item)))
