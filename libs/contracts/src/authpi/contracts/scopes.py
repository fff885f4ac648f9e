"""The Core API scope catalogue and its evaluation (core-api.md 5): `resource[.sub…]:action`,
deny by default, `manage` implies read/write/delete, `write` implies `read`, `delete` implies
nothing else, no hierarchy between resources and no wildcard."""

from __future__ import annotations

import re
from collections.abc import Iterable

SCOPE_RE = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*:(read|write|delete|manage)$")

_RESOURCES: dict[str, tuple[str, ...]] = {
    "account": ("read", "write"),
    "api-keys": ("read", "write", "manage"),
    "tokens": ("read", "write"),
    "domains": ("read", "write"),
    "events": ("read",),
    "webhooks": ("read", "write", "manage"),
    "notes": ("read", "write"),
    "issuers": ("read", "write"),
    "issuers.auth-methods": ("read", "write"),
    "issuers.clients": ("read", "write", "manage"),
    "issuers.users": ("read", "write"),
    "issuers.users.sessions": ("read",),
    "issuers.users.tokens": ("read", "write"),
    "issuers.users.verifiers": ("read", "write"),
    "issuers.users.trusted-devices": ("read", "write"),
    "issuers.sessions": ("read", "write"),
    "issuers.approvals": ("read", "write"),
    "issuers.tokens": ("read",),
    "issuers.agents": ("read", "write", "manage"),
    "issuers.organizations": ("read", "write"),
    "issuers.organizations.members": ("read", "write"),
    "issuers.organizations.invitations": ("read", "write"),
    "issuers.organizations.groups": ("read", "write"),
    "issuers.organizations.api-keys": ("read", "write"),
    "issuers.organizations.sso": ("read", "write"),
    "credits": ("read", "write"),
}

CATALOGUE: frozenset[str] = frozenset(
    [f"{r}:{a}" for r, actions in _RESOURCES.items() for a in actions]
    + [f"{r}:delete" for r in _RESOURCES]
)
ALL_SCOPES: tuple[str, ...] = tuple(sorted(CATALOGUE))

_IMPLIED_BY = {
    "read": ("read", "write", "manage"),
    "write": ("write", "manage"),
    "delete": ("delete", "manage"),
    "manage": ("manage",),
}


def is_known(scope: str) -> bool:
    return scope in CATALOGUE


def grants(held: Iterable[str], required: str) -> bool:
    """True when a credential holding `held` may use a route that requires `required`."""
    resource, _, action = required.rpartition(":")
    held_set = set(held)
    return any(f"{resource}:{a}" in held_set for a in _IMPLIED_BY[action])
