"""The ApiKey aggregate: an id plus a secret digest, with scopes and restrictions (core-api.md
3.4). The secret itself never enters an event."""

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
from authpi.directory.domain.commands import CreateApiKey
from authpi.errors import Conflict


class Absent(msgspec.Struct, frozen=True):
    pass


class Live(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    status: str
    scopes: list[str]


class Deleted(msgspec.Struct, frozen=True):
    id: str


ApiKey = Absent | Live | Deleted
INITIAL: ApiKey = Absent()
ApiKeyCommand = CreateApiKey


def decide(cmd: ApiKeyCommand, state: ApiKey) -> list[Event]:
    match cmd, state:
        case CreateApiKey(), Absent():
            return [
                ApiKeyCreated(
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
            ]
    raise Conflict("the API key already exists", reason="api_key.exists")


def evolve(state: ApiKey, event: Event) -> ApiKey:
    match state, event:
        case Absent(), ApiKeyCreated():
            return Live(
                id=event.id, account_id=event.account_id, status="active", scopes=event.scopes
            )
        case Live(), ApiKeyUpdated():
            return msgspec.structs.replace(
                state,
                status=event.status or state.status,
                scopes=event.scopes if event.scopes is not None else state.scopes,
            )
        case Live(), ApiKeyBlocked():
            return msgspec.structs.replace(state, status="blocked")
        case Live(), ApiKeyUnblocked():
            return msgspec.structs.replace(state, status="active")
        case Live(), ApiKeyDeleted():
            return Deleted(state.id)
    return state
