"""Which events are security events: a consumer that misses one keeps a revoked credential or a
deleted identity alive, so their dead letters alert and are never swept unresolved."""

from __future__ import annotations

# The last word of an event type that takes access away or destroys something: a projection
# that misses one keeps a revoked credential or a deleted identity alive.
_SECURITY_ACTIONS = frozenset(
    {"revoked", "deleted", "blocked", "suspended", "removed", "retired", "unassigned"}
)
# Changes that can narrow a credential's scopes, expiry or role.
_SECURITY_UPDATES = frozenset(
    {"api-key.updated", "user.personal-token.updated", "organization.membership.updated"}
)


def is_security_event(event_type: str | None) -> bool:
    if not event_type:
        return False
    return event_type in _SECURITY_UPDATES or event_type.rsplit(".", 1)[-1] in _SECURITY_ACTIONS


def event_type_of_subject(subject: str) -> str | None:
    """`<ns>.evt.<account>.<type tokens>` -> the type, for messages too broken to decode."""
    _, evt, rest = subject.partition(".evt.")
    _, dot, event_type = rest.partition(".")
    return event_type if evt and dot and event_type else None
