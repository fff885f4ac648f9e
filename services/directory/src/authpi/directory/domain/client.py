"""The Client aggregate (core-api.md 3.8): an OAuth/OIDC application of one issuer. Confidential
clients (web, m2m) hold a secret digest; rotation keeps the previous digest valid 15 minutes.
Status `active` / `disabled` (client.blocked / client.unblocked); delete is soft and final
(status `deleted`, then 404 for everything but a repeated delete)."""

from __future__ import annotations

from typing import Any, assert_never

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.directory import (
    ClientBlocked,
    ClientConfig,
    ClientCreated,
    ClientDeleted,
    ClientSecretRotated,
    ClientUnblocked,
    ClientUpdated,
)
from authpi.directory.domain import client_settings
from authpi.directory.domain.commands.client import (
    CreateClient,
    DeleteClient,
    RotateClientSecret,
    UpdateClient,
)
from authpi.errors import Conflict, FieldProblem, NotFound, Unprocessable
from authpi.web.etag import check_if_match, etag_of, strictly_after
from authpi.web.metadata import merge_metadata


class Absent(msgspec.Struct, frozen=True):
    pass


class Live(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    issuer_id: str
    name: str
    type: str
    confidential: bool
    description: str | None
    logo_url: str | None
    status: str
    config: ClientConfig
    metadata: dict[str, Any]
    secret_sha256: str | None
    created_at: int
    status_at: int | None = None
    secret_rotated_at: int | None = None
    updated_at: int | None = None

    @property
    def etag(self) -> str:
        return etag_of(self.created_at, self.updated_at)

    def changed_at(self, now: int) -> int:
        return strictly_after(now, self.updated_at or self.created_at)


Client = Absent | Live
INITIAL: Client = Absent()
# What an existing client accepts: every command but CreateClient.
ClientCommand = CreateClient | UpdateClient | DeleteClient | RotateClientSecret
LiveCommand = UpdateClient | DeleteClient | RotateClientSecret
_FIELDS = ("name", "description", "logo_url", "config", "metadata")


def decide(cmd: ClientCommand, state: Client) -> list[Event]:
    match cmd, state:
        case CreateClient(), Absent():
            return [_created(cmd)]
        case CreateClient(), _:
            raise Conflict("the client already exists", reason="client.exists")
        case DeleteClient(), Live(status="deleted") if state.issuer_id == cmd.issuer_id:
            return []
        case _, Live() if state.issuer_id == cmd.issuer_id and state.status != "deleted":
            check_if_match(cmd.if_match, state.etag)
            return _on_live(cmd, state)
        case _:
            raise NotFound("no such client", reason="client.not_found")


def _on_live(cmd: LiveCommand, client: Live) -> list[Event]:
    at = client.changed_at(cmd.now)
    match cmd:
        case UpdateClient():
            return _updated(cmd, client)
        case DeleteClient():
            return [ClientDeleted(id=client.id, issuer_id=client.issuer_id, deleted_at=at)]
        case RotateClientSecret():
            if not client.confidential:
                raise Conflict("a public client has no secret", reason="client.public")
            return [ClientSecretRotated(
                id=client.id, issuer_id=client.issuer_id, secret_sha256=cmd.secret_sha256,
                secret_hint=cmd.secret_hint, previous_secret_sha256=client.secret_sha256,
                previous_valid_until=at + cmd.grace_ms, secret_rotated_at=at)]  # fmt: skip
        case _:
            assert_never(cmd)


def _created(cmd: CreateClient) -> ClientCreated:
    config = client_settings.normalize(cmd.type, cmd.settings)
    return ClientCreated(
        id=cmd.client_id, issuer_id=cmd.issuer_id, name=cmd.name, client_type=cmd.type,
        confidential=cmd.type in client_settings.CONFIDENTIAL, description=cmd.description,
        logo_url=cmd.logo_url, status=cmd.status, config=config, metadata=cmd.metadata,
        secret_sha256=cmd.secret_sha256, secret_hint=cmd.secret_hint, created_at=cmd.now,
    )  # fmt: skip


def _updated(cmd: UpdateClient, client: Live) -> list[Event]:
    if cmd.type is not msgspec.UNSET and cmd.type != client.type:
        problem = FieldProblem(field="type", code="immutable", message="type cannot be changed")
        raise Unprocessable(problem.message, reason="client.type_immutable", fields=[problem])
    after = _apply(cmd, client)
    changed = [f for f in _FIELDS if after[f] != getattr(client, f)]
    at = client.changed_at(cmd.now)
    events: list[Event] = []
    if changed:
        events.append(ClientUpdated(
            id=client.id, issuer_id=client.issuer_id,
            changed=["settings" if f == "config" else f for f in changed], updated_at=at,
            **after))  # fmt: skip
    if cmd.status is not msgspec.UNSET and cmd.status != client.status:
        status_class = ClientBlocked if cmd.status == "disabled" else ClientUnblocked
        events.append(status_class(
            id=client.id, issuer_id=client.issuer_id, status_reason=cmd.status_reason,
            status_by=cmd.status_by, status_at=at + 1 if changed else at))  # fmt: skip
    return events


def _apply(cmd: UpdateClient, client: Live) -> dict[str, Any]:
    unset = msgspec.UNSET
    after: dict[str, Any] = {f: getattr(client, f) for f in _FIELDS}
    for field in ("name", "description", "logo_url"):
        value = getattr(cmd, field)
        if value is not unset:
            after[field] = value
    if cmd.settings is not unset:
        raw = client_settings.patched(client.config, cmd.settings) if cmd.settings else {}
        after["config"] = client_settings.normalize(client.type, raw)
    after["metadata"] = merge_metadata(client.metadata, cmd.metadata)
    return after


def evolve(state: Client, event: Event) -> Client:
    match state, event:
        case Absent(), ClientCreated():
            return Live(
                id=event.id, issuer_id=event.issuer_id, name=event.name, type=event.client_type,
                confidential=event.confidential, description=event.description,
                logo_url=event.logo_url, status=event.status, config=event.config,
                metadata=event.metadata, secret_sha256=event.secret_sha256,
                created_at=event.created_at,
            )  # fmt: skip
        case Live(), ClientUpdated():
            return msgspec.structs.replace(
                state, name=event.name, description=event.description, logo_url=event.logo_url,
                config=event.config, metadata=event.metadata, updated_at=event.updated_at,
            )  # fmt: skip
        case Live(), ClientBlocked() | ClientUnblocked():
            return msgspec.structs.replace(
                state, status=event.status, status_at=event.status_at, updated_at=event.status_at
            )
        case Live(), ClientSecretRotated():
            return msgspec.structs.replace(
                state, secret_sha256=event.secret_sha256,
                secret_rotated_at=event.secret_rotated_at, updated_at=event.secret_rotated_at,
            )  # fmt: skip
        case Live(), ClientDeleted():
            return msgspec.structs.replace(
                state, status="deleted", status_at=event.deleted_at, updated_at=event.deleted_at
            )
        case _:
            return state
