"""The settings of a webhook besides its URL (platform.md 7.3, 7.6, 7.7), checked and normalised:
the event filter (None = every type; `[]` and unknown names are 400, `unknown_event_type`), the
subject filter, the retry policy and the circuit breaker. Pure; each failure is a 400 with a
`fields` entry naming the field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from authpi.contracts.public import WEBHOOK_EVENT_TYPES
from authpi.errors import FieldProblem, InvalidRequest

AUTH_TYPES = ("none", "bearer", "signature", "bearer+signature")
SIGNATURE_ALGORITHM = "hmac-sha256"
# Delivery defaults (platform.md 7.6, 7.7); "failing that long" is PLAN's system disable.
MAX_ATTEMPTS = 8
MAX_ATTEMPTS_RANGE = (1, 20)
BACKOFFS = ("exponential",)
FAILURE_THRESHOLD = 20
PROBE_INTERVAL_SECONDS = 900
DISABLE_AFTER_SECONDS = 72 * 3600
BREAKER_RANGES: dict[str, tuple[int, int]] = {
    "failure_threshold": (1, 10_000),
    "probe_interval_seconds": (1, 7 * 86_400),
    "disable_after_seconds": (1, 30 * 86_400),
}
# The keys an event's `subject` may carry (platform.md 6.1, 6.3).
SUBJECT_KEYS = frozenset({
    "account_id", "issuer_id", "user_id", "client_id", "agent_id", "org_id", "session_id",
    "key_id", "token_id", "webhook_id", "verifier_id", "device_id", "group_id", "invitation_id",
    "member_id", "auth_method_id",
})  # fmt: skip
MAX_SUBJECTS = 50
MAX_SUBJECT_VALUE = 200
_KNOWN_TYPES = frozenset(WEBHOOK_EVENT_TYPES)


def bad(field: str, message: str, code: str = "invalid_value") -> InvalidRequest:
    problem = FieldProblem(field=field, code=code, message=f"{field} {message}")
    return InvalidRequest(problem.message, reason=f"webhook.{field}.{code}", fields=[problem])


def check_events(events: Sequence[str] | None) -> list[str] | None:
    """None (every type, current and future) or the exact names, deduplicated, in order."""
    if events is None:
        return None
    if not events:
        raise bad("events", "must name at least one event type; omit it (or send null) to "
                  "receive every type", "empty")  # fmt: skip
    unknown = [name for name in events if name not in _KNOWN_TYPES]
    if unknown:
        problems = [
            FieldProblem(field="events", code="unknown_event_type",
                         message=f"{name[:100]!r} is not an event type (exact names only, no "
                         "wildcards)")
            for name in unknown[:10]
        ]  # fmt: skip
        raise InvalidRequest(problems[0].message, reason="webhook.events.unknown",
                             fields=problems)  # fmt: skip
    return list(dict.fromkeys(events))


def check_subjects(subjects: Sequence[Mapping[str, Any]] | None) -> list[dict[str, str]] | None:
    """None (no subject filter) or match objects: an event matches when every key of any one
    object equals its subject's value (platform.md 7.3)."""
    if subjects is None:
        return None
    if not subjects:
        raise bad("subjects", "must hold at least one match object; omit it (or send null) "
                  "for no subject filter", "empty")  # fmt: skip
    if len(subjects) > MAX_SUBJECTS:
        raise bad("subjects", f"holds at most {MAX_SUBJECTS} match objects", "too_many")
    out: list[dict[str, str]] = []
    for match in subjects:
        if not match:
            raise bad("subjects", "must not hold an empty match object", "empty")
        for key, value in match.items():
            if key not in SUBJECT_KEYS:
                raise bad("subjects", f"key {key[:60]!r} is not a subject key (one of "
                          f"{', '.join(sorted(SUBJECT_KEYS))})", "unknown_subject_key")  # fmt: skip
            if not isinstance(value, str) or not 1 <= len(value) <= MAX_SUBJECT_VALUE:
                raise bad("subjects", f"value of {key} must be a string of 1 to "
                          f"{MAX_SUBJECT_VALUE} characters")  # fmt: skip
        out.append({str(k): str(v) for k, v in match.items()})
    return out


def _int_in(field: str, value: Any, bounds: tuple[int, int]) -> int:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad(field, f"must be an integer from {low} to {high}", "out_of_range")
    return value


def check_retry(retry: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if retry is None:
        return None
    unknown = set(retry) - {"max_attempts", "backoff"}
    if unknown:
        raise bad("retry", f"has unknown keys: {', '.join(sorted(unknown))[:200]}", "unknown_key")
    out: dict[str, Any] = {}
    if retry.get("max_attempts") is not None:
        out["max_attempts"] = _int_in("retry.max_attempts", retry["max_attempts"],
                                      MAX_ATTEMPTS_RANGE)  # fmt: skip
    if retry.get("backoff") is not None:
        if retry["backoff"] not in BACKOFFS:
            raise bad("retry.backoff", f"must be one of {', '.join(BACKOFFS)}")
        out["backoff"] = retry["backoff"]
    return out


def check_circuit_breaker(breaker: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if breaker is None:
        return None
    unknown = set(breaker) - set(BREAKER_RANGES)
    if unknown:
        raise bad("circuit_breaker", f"has unknown keys: {', '.join(sorted(unknown))[:200]}",
                  "unknown_key")  # fmt: skip
    return {
        key: _int_in(f"circuit_breaker.{key}", breaker[key], bounds)
        for key, bounds in BREAKER_RANGES.items()
        if breaker.get(key) is not None
    }
