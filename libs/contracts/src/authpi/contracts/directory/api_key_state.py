"""The one fold of the api-key events (core-api.md 3.4): what a key is after each of them.

Every holder of API-key state folds with it: the directory's decider and its api_keys_view, the
gateway's key cache and its own api_keys_view. Each holds some of `ApiKeyState`'s fields, under
the same names: `evolve` keeps those, and `changes` gives a view the columns one event sets.

The rules of `api-key.updated`, which carries only what changed: a field is set when its value
is present; `description` and `expires_at` (nullable) when named in `changed`; a status with its
time, reason and actor; a new secret digest with its hint and rotation time, while the current
digest moves to `previous_sha256` and keeps authenticating until `previous_valid_until`
(rotation grace). `api-key.blocked` and `api-key.unblocked` set the status the same way."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.directory.accounts import (
    ApiKeyBlocked,
    ApiKeyCreated,
    ApiKeyDeleted,
    ApiKeyUnblocked,
    ApiKeyUpdated,
)


class ApiKeyState(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the api-key events say of one key (digests only, never the secret)."""

    id: str
    account_id: str
    org_id: str
    issuer_id: str | None
    name: str
    description: str | None = None
    tags: list[str] = []
    scopes: list[str] = []
    ip_allowlist: list[str] = []
    expires_at: int | None = None
    metadata: dict[str, Any] = {}
    status: str = "active"
    status_at: int | None = None
    status_reason: str | None = None
    status_by: str | None = None
    secret_sha256: str
    secret_hint: str
    previous_sha256: str | None = None
    previous_valid_until: int | None = None
    last_rotated_at: int | None = None
    created_at: int
    updated_at: int | None = None
    version: int = 0  # the stream version of the last event folded in


ApiKeyChange = ApiKeyUpdated | ApiKeyBlocked | ApiKeyUnblocked
S = TypeVar("S", bound=msgspec.Struct)
# Field -> how a holder stores it (the gateway: scopes as a set, the allowlist parsed).
Conversions = Mapping[str, Callable[[Any], Any]]
NO_CONVERSIONS: Conversions = {}
# (field, source): when `source` changes, `field` takes the value `source` held before.
CARRIED = (("previous_sha256", "secret_sha256"),)


def created(event: ApiKeyCreated, version: int) -> ApiKeyState:
    return ApiKeyState(
        id=event.id,
        account_id=event.account_id,
        org_id=event.org_id,
        issuer_id=event.issuer_id,
        name=event.name,
        description=event.description,
        tags=event.tags,
        scopes=event.scopes,
        ip_allowlist=event.ip_allowlist,
        expires_at=event.expires_at,
        metadata=event.metadata,
        secret_sha256=event.secret_sha256,
        secret_hint=event.secret_hint,
        created_at=event.created_at,
        version=version,
    )


def changes(event: ApiKeyChange) -> dict[str, Any]:
    """Field -> new value, in a fixed order, for the fields `event` sets on an existing key
    (besides the `CARRIED` ones and the version)."""
    if isinstance(event, ApiKeyBlocked | ApiKeyUnblocked):
        return {
            "status": event.status,
            "status_at": event.status_at,
            "status_reason": event.status_reason,
            "status_by": event.status_by,
            "updated_at": event.status_at,
        }
    present = {"name": event.name, "tags": event.tags, "scopes": event.scopes,
               "ip_allowlist": event.ip_allowlist, "metadata": event.metadata}  # fmt: skip
    values: dict[str, Any] = {k: v for k, v in present.items() if v is not None}
    for nullable in ("description", "expires_at"):
        if nullable in event.changed:
            values[nullable] = getattr(event, nullable)
    if event.status is not None:
        values.update(status=event.status, status_at=event.updated_at,
                      status_reason=event.status_reason, status_by=event.status_by)  # fmt: skip
    if event.secret_sha256 is not None:
        values.update(secret_sha256=event.secret_sha256, secret_hint=event.secret_hint,
                      previous_valid_until=event.previous_valid_until,
                      last_rotated_at=event.updated_at)  # fmt: skip
    values["updated_at"] = event.updated_at
    return values


def evolve(
    state: S | None,
    event: Event,
    version: int | None,
    *,
    into: type[S],
    convert: Conversions = NO_CONVERSIONS,
) -> S | None:
    """The key after `event`, as an `into` (a Struct holding some of `ApiKeyState`'s fields);
    None when there is no key (not created yet, or deleted). With a stream `version`, a holder
    that keeps a `version` field ignores an event at or below it (a replay); without one (a
    decider, which folds its stream in order), events apply as they come."""
    if state is None:
        if not isinstance(event, ApiKeyCreated):
            return None
        return _shaped(into, created(event, version or 0), convert)
    held: int | None = getattr(state, "version", None)
    if version is not None and held is not None and version <= held:
        return state
    values: dict[str, Any] = {}
    match event:
        case ApiKeyDeleted():
            return None
        case ApiKeyUpdated() | ApiKeyBlocked() | ApiKeyUnblocked():
            values = changes(event)
            for field, source in CARRIED:
                if source in values:
                    values[field] = getattr(state, source, None)
        case _:
            pass
    if version is not None:
        values["version"] = version
    kept = {k: convert.get(k, _same)(v) for k, v in values.items() if k in state.__struct_fields__}
    return msgspec.structs.replace(state, **kept)


def shaped(into: type[S], values: Mapping[str, Any], convert: Conversions = NO_CONVERSIONS) -> S:
    """A holder from stored values of its fields (a view's row, say), converted its way."""
    return into(**{f: convert.get(f, _same)(values[f]) for f in into.__struct_fields__})


def _shaped(into: type[S], key: ApiKeyState, convert: Conversions) -> S:
    return shaped(into, msgspec.structs.asdict(key), convert)


def _same(value: Any) -> Any:
    return value
