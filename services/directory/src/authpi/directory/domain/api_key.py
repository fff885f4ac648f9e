"""The ApiKey aggregate: an id plus a secret digest, with scopes and restrictions (core-api.md
3.4). The secret itself never enters an event. Only `active`, unexpired keys authenticate;
`revoked` and `expired` are terminal. Actions on an existing key compare `If-Match` here, against
the folded state, so that the check is atomic with the append (authpi.web.etag). An update emits
one `api-key.updated` naming only what changed (nothing when nothing did); delete removes the key
for good."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.directory import (
    ApiKeyBlocked,
    ApiKeyCreated,
    ApiKeyDeleted,
    ApiKeyUnblocked,
    ApiKeyUpdated,
)
from authpi.directory.domain.commands.api_key import (
    BlockApiKey,
    CreateApiKey,
    DeleteApiKey,
    RevokeApiKey,
    RotateApiKey,
    UnblockApiKey,
    UpdateApiKey,
)
from authpi.directory.domain.grant_subset import check_within
from authpi.errors import Conflict, NotFound
from authpi.web.etag import check_if_match, etag_of, strictly_after
from authpi.web.metadata import check_metadata, merge_metadata


class Absent(msgspec.Struct, frozen=True):
    pass


class Live(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    status: str
    scopes: list[str]
    expires_at: int | None = None
    created_at: int = 0
    updated_at: int | None = None
    name: str = ""
    description: str | None = None
    tags: list[str] = []
    ip_allowlist: list[str] = []
    metadata: dict[str, Any] = {}

    @property
    def etag(self) -> str:
        return etag_of(self.created_at, self.updated_at)

    def changed_at(self, now: int) -> int:
        """When a change decided at `now` happens: strictly after the last one (ETags differ)."""
        return strictly_after(now, self.updated_at or self.created_at)

    def terminal(self, now: int) -> str | None:
        if self.status == "revoked":
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return None


class Deleted(msgspec.Struct, frozen=True):
    id: str


ApiKey = Absent | Live | Deleted
INITIAL: ApiKey = Absent()
KeyAction = BlockApiKey | UnblockApiKey | RevokeApiKey | RotateApiKey
KeyEdit = UpdateApiKey | DeleteApiKey
ApiKeyCommand = CreateApiKey | KeyAction | KeyEdit


def decide(cmd: ApiKeyCommand, state: ApiKey) -> list[Event]:
    match cmd, state:
        case CreateApiKey(), Absent():
            return [_created(cmd)]
        case CreateApiKey(), _:
            raise Conflict("the API key already exists", reason="api_key.exists")
        case UpdateApiKey() | DeleteApiKey(), Live() if state.account_id == cmd.account_id:
            check_within(cmd.held, state.scopes, "API key")
            check_if_match(cmd.if_match, state.etag)
            return _edit(cmd, state)
        case (
            BlockApiKey() | UnblockApiKey() | RevokeApiKey() | RotateApiKey(),
            Live(),
        ) if state.account_id == cmd.account_id:  # fmt: skip
            check_within(cmd.held, state.scopes, "API key")
            check_if_match(cmd.if_match, state.etag)
            return _act(cmd, state)
        case _:
            raise NotFound("no such API key", reason="api_key.not_found")


def _act(cmd: KeyAction, key: Live) -> list[Event]:
    terminal = key.terminal(cmd.now)
    match cmd:
        case RevokeApiKey():
            if key.status == "revoked":
                return []
            return [ApiKeyUpdated(
                id=key.id, changed=["status"], status="revoked", status_reason=cmd.status_reason,
                status_by=cmd.status_by, updated_at=key.changed_at(cmd.now))]  # fmt: skip
        case _ if terminal is not None:
            raise Conflict(f"the API key is {terminal}", reason=f"api_key.{terminal}")
        case BlockApiKey():
            if key.status == "blocked":
                return []
            return [ApiKeyBlocked(
                id=key.id, status_reason=cmd.status_reason, status_by=cmd.status_by,
                status_at=key.changed_at(cmd.now))]  # fmt: skip
        case UnblockApiKey():
            if key.status == "active":
                return []
            return [ApiKeyUnblocked(id=key.id, status_at=key.changed_at(cmd.now))]
        case RotateApiKey():
            at = key.changed_at(cmd.now)
            return [ApiKeyUpdated(
                id=key.id, changed=["secret"], secret_sha256=cmd.secret_sha256,
                secret_hint=cmd.secret_hint, previous_valid_until=at + cmd.grace_ms,
                updated_at=at)]  # fmt: skip
    raise AssertionError(f"unhandled command {cmd!r}")


def _edit(cmd: KeyEdit, key: Live) -> list[Event]:
    if isinstance(cmd, DeleteApiKey):
        return [ApiKeyDeleted(id=key.id, deleted_at=key.changed_at(cmd.now))]
    changes = _changes(cmd, key)
    status = _status_change(cmd, key)
    if not changes and status is None:
        return []
    _check_live_fields(changes, key, cmd.now)
    status_fields: dict[str, Any] = (
        {"status": status, "status_reason": cmd.status_reason, "status_by": cmd.status_by}
        if status is not None
        else {}
    )
    changed = [*changes, *(["status"] if status is not None else [])]
    at = key.changed_at(cmd.now)
    return [ApiKeyUpdated(id=key.id, changed=changed, updated_at=at, **changes, **status_fields)]


def _changes(cmd: UpdateApiKey, key: Live) -> dict[str, Any]:
    """Field -> new value, for the fields the command sets to something new."""
    metadata = merge_metadata(key.metadata, cmd.metadata)
    if cmd.metadata is not msgspec.UNSET:
        check_metadata(metadata)
    wanted = {"name": cmd.name, "description": cmd.description, "tags": cmd.tags,
              "scopes": cmd.scopes, "ip_allowlist": cmd.ip_allowlist,
              "expires_at": cmd.expires_at, "metadata": metadata}  # fmt: skip
    return {
        name: value
        for name, value in wanted.items()
        if value is not msgspec.UNSET and value != getattr(key, name)
    }


# What decides whether a key authenticates. `revoked` and `expired` are terminal (core-api.md
# 3.4): moving `expires_at` (to null or later) must not bring an expired key back to life, so on a
# terminal key these stay as they are. Descriptive fields remain editable for the audit record.
_LIVE_FIELDS = frozenset({"expires_at", "scopes", "ip_allowlist"})


def _check_live_fields(changes: dict[str, Any], key: Live, now: int) -> None:
    terminal = key.terminal(now)
    if terminal is not None and _LIVE_FIELDS.intersection(changes):
        raise Conflict(f"the API key is {terminal}", reason=f"api_key.{terminal}")


def _status_change(cmd: UpdateApiKey, key: Live) -> str | None:
    """`status` on PATCH moves between active and blocked only (core-api.md 3.4). A terminal
    key refuses any status, even the one stored: an expired key's stored status is `active`."""
    if cmd.status is msgspec.UNSET:
        return None
    terminal = key.terminal(cmd.now)
    if terminal is not None:
        raise Conflict(f"the API key is {terminal}", reason=f"api_key.{terminal}")
    return None if cmd.status == key.status else cmd.status


def _created(cmd: CreateApiKey) -> ApiKeyCreated:
    return ApiKeyCreated(
        id=cmd.key_id,
        account_id=cmd.account_id,
        org_id=cmd.org_id,
        issuer_id=cmd.issuer_id,
        name=cmd.name,
        description=cmd.description,
        tags=cmd.tags,
        scopes=cmd.scopes,
        ip_allowlist=cmd.ip_allowlist,
        expires_at=cmd.expires_at,
        metadata=cmd.metadata,
        secret_sha256=cmd.secret_sha256,
        secret_hint=cmd.secret_hint,
        created_at=cmd.now,
    )


def evolve(state: ApiKey, event: Event) -> ApiKey:
    match state, event:
        case Absent(), ApiKeyCreated():
            return Live(
                id=event.id,
                account_id=event.account_id,
                status="active",
                scopes=event.scopes,
                expires_at=event.expires_at,
                created_at=event.created_at,
                name=event.name,
                description=event.description,
                tags=event.tags,
                ip_allowlist=event.ip_allowlist,
                metadata=event.metadata,
            )
        case Live(), ApiKeyUpdated():
            return _updated(state, event)
        case Live(), ApiKeyBlocked() | ApiKeyUnblocked():
            return msgspec.structs.replace(state, status=event.status, updated_at=event.status_at)
        case Live(), ApiKeyDeleted():
            return Deleted(state.id)
        case _:
            return state


def _updated(state: Live, event: ApiKeyUpdated) -> Live:
    present = {"name": event.name, "tags": event.tags, "scopes": event.scopes,
               "ip_allowlist": event.ip_allowlist, "metadata": event.metadata}  # fmt: skip
    changes: dict[str, Any] = {k: v for k, v in present.items() if v is not None}
    for nullable in ("description", "expires_at"):
        if nullable in event.changed:
            changes[nullable] = getattr(event, nullable)
    return msgspec.structs.replace(
        state,
        **changes,
        status=event.status or state.status,
        updated_at=event.updated_at,
    )
