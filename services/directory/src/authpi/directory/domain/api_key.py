"""The ApiKey aggregate: an id plus a secret digest, with scopes and restrictions (core-api.md
3.4). The secret itself never enters an event. Only `active`, unexpired keys authenticate;
`revoked` and `expired` are terminal. Actions on an existing key compare `If-Match` here, against
the folded state, so that the check is atomic with the append (authpi.web.etag)."""

from __future__ import annotations

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.directory import (
    ApiKeyBlocked,
    ApiKeyCreated,
    ApiKeyDeleted,
    ApiKeyUnblocked,
    ApiKeyUpdated,
)
from authpi.directory.domain.commands import (
    BlockApiKey,
    CreateApiKey,
    RevokeApiKey,
    RotateApiKey,
    UnblockApiKey,
)
from authpi.errors import Conflict, NotFound
from authpi.web.etag import check_if_match, etag_of, strictly_after


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
ApiKeyCommand = CreateApiKey | KeyAction


def decide(cmd: ApiKeyCommand, state: ApiKey) -> list[Event]:
    match cmd, state:
        case CreateApiKey(), Absent():
            return [_created(cmd)]
        case CreateApiKey(), _:
            raise Conflict("the API key already exists", reason="api_key.exists")
        case _, Live() if state.account_id == cmd.account_id:
            check_if_match(cmd.if_match, state.etag)
            return _act(cmd, state)
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
            )
        case Live(), ApiKeyUpdated():
            return _updated(state, event)
        case Live(), ApiKeyBlocked() | ApiKeyUnblocked():
            return msgspec.structs.replace(state, status=event.status, updated_at=event.status_at)
        case Live(), ApiKeyDeleted():
            return Deleted(state.id)
    return state


def _updated(state: Live, event: ApiKeyUpdated) -> Live:
    return msgspec.structs.replace(
        state,
        status=event.status or state.status,
        scopes=event.scopes if event.scopes is not None else state.scopes,
        expires_at=event.expires_at if "expires_at" in event.changed else state.expires_at,
        updated_at=event.updated_at,
    )
