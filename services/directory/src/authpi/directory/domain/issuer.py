"""The Issuer aggregate (core-api.md 3.7): an isolated identity provider of one account, with
its settings (token lifetimes, signing algorithms, sessions) and its auth methods, which live in
the issuer's stream (domain/auth_methods.py decides them). Deleting an issuer is final."""

from __future__ import annotations

from typing import Any, assert_never

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.directory import (
    AuthMethodCreated,
    AuthMethodDeleted,
    AuthMethodUpdated,
    IssuerCreated,
    IssuerDeleted,
    IssuerUpdated,
    TokenPolicy,
)
from authpi.directory.domain import auth_methods, issuer_settings
from authpi.directory.domain.auth_methods import Method
from authpi.directory.domain.checks import deep_merge
from authpi.directory.domain.commands.issuer import (
    CreateAuthMethod,
    CreateIssuer,
    DeleteAuthMethod,
    DeleteIssuer,
    UpdateAuthMethod,
    UpdateIssuer,
)
from authpi.errors import Conflict, NotFound
from authpi.web.etag import check_if_match, etag_of, strictly_after
from authpi.web.metadata import merge_metadata


class Absent(msgspec.Struct, frozen=True):
    pass


class Live(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    name: str
    description: str | None
    links: dict[str, Any]
    available_scopes: list[str]
    status: str
    settings: dict[str, Any]
    tokens: TokenPolicy
    metadata: dict[str, Any]
    created_at: int
    status_at: int | None = None
    updated_at: int | None = None
    methods: dict[str, Method] = {}

    @property
    def etag(self) -> str:
        return etag_of(self.created_at, self.updated_at)

    def changed_at(self, now: int) -> int:
        return strictly_after(now, self.updated_at or self.created_at)


class Deleted(msgspec.Struct, frozen=True):
    id: str
    account_id: str


Issuer = Absent | Live | Deleted
INITIAL: Issuer = Absent()
# What an existing issuer accepts: every command but CreateIssuer.
IssuerCommand = (
    CreateIssuer | UpdateIssuer | DeleteIssuer | CreateAuthMethod | UpdateAuthMethod
    | DeleteAuthMethod
)  # fmt: skip
LiveCommand = UpdateIssuer | DeleteIssuer | CreateAuthMethod | UpdateAuthMethod | DeleteAuthMethod
_FIELDS = ("name", "description", "links", "available_scopes", "status", "settings", "metadata")


def decide(cmd: IssuerCommand, state: Issuer) -> list[Event]:
    match cmd, state:
        case CreateIssuer(), Absent():
            return [_created(cmd)]
        case CreateIssuer(), _:
            raise Conflict("the issuer already exists", reason="issuer.exists")
        case _, Live() if state.account_id == cmd.account_id:
            return _on_live(cmd, state)
        case _:
            raise NotFound("no such issuer", reason="issuer.not_found")


def _on_live(cmd: LiveCommand, issuer: Live) -> list[Event]:
    match cmd:
        case UpdateIssuer():
            check_if_match(cmd.if_match, issuer.etag)
            return _updated(cmd, issuer)
        case DeleteIssuer():
            check_if_match(cmd.if_match, issuer.etag)
            return [IssuerDeleted(id=issuer.id, account_id=issuer.account_id,
                                  deleted_at=issuer.changed_at(cmd.now))]  # fmt: skip
        case CreateAuthMethod() | UpdateAuthMethod() | DeleteAuthMethod():
            return auth_methods.decide(cmd, issuer.id, issuer.methods)
        case _:
            assert_never(cmd)


def _created(cmd: CreateIssuer) -> IssuerCreated:
    settings, tokens = issuer_settings.normalize(cmd.settings)
    return IssuerCreated(
        id=cmd.issuer_id, account_id=cmd.account_id, name=cmd.name, description=cmd.description,
        links=cmd.links, available_scopes=cmd.available_scopes, status=cmd.status,
        settings=settings, tokens=tokens, metadata=cmd.metadata, created_at=cmd.now,
    )  # fmt: skip


def _updated(cmd: UpdateIssuer, issuer: Live) -> list[Event]:
    after = _apply(cmd, issuer)
    changed = [f for f in _FIELDS if after[f] != getattr(issuer, f)]
    if not changed:
        return []
    settings, tokens = issuer_settings.normalize(after["settings"])
    at = issuer.changed_at(cmd.now)
    status_at = at if "status" in changed else issuer.status_at
    return [IssuerUpdated(
        id=issuer.id, account_id=issuer.account_id, changed=changed, name=after["name"],
        description=after["description"], links=after["links"],
        available_scopes=after["available_scopes"], status=after["status"], status_at=status_at,
        settings=settings, tokens=tokens, metadata=after["metadata"], updated_at=at,
    )]  # fmt: skip


def _apply(cmd: UpdateIssuer, issuer: Live) -> dict[str, Any]:
    """The issuer's fields after the patch (settings normalized, so no-op patches compare
    equal)."""
    unset = msgspec.UNSET
    after: dict[str, Any] = {f: getattr(issuer, f) for f in _FIELDS}
    if cmd.name is not unset:
        after["name"] = cmd.name
    if cmd.description is not unset:
        after["description"] = cmd.description
    if cmd.links is not unset:
        after["links"] = cmd.links or {}
    if cmd.available_scopes is not unset:
        after["available_scopes"] = cmd.available_scopes or []
    if cmd.status is not unset:
        after["status"] = cmd.status
    if cmd.settings is not unset:
        merged = deep_merge(issuer.settings, cmd.settings) if cmd.settings is not None else {}
        after["settings"] = issuer_settings.normalize(merged)[0]
    after["metadata"] = merge_metadata(issuer.metadata, cmd.metadata)
    return after


def evolve(state: Issuer, event: Event) -> Issuer:
    match state, event:
        case Absent(), IssuerCreated():
            return Live(
                id=event.id, account_id=event.account_id, name=event.name,
                description=event.description, links=event.links,
                available_scopes=event.available_scopes, status=event.status,
                settings=event.settings, tokens=event.tokens, metadata=event.metadata,
                created_at=event.created_at,
            )  # fmt: skip
        case Live(), IssuerUpdated():
            return msgspec.structs.replace(
                state, name=event.name, description=event.description, links=event.links,
                available_scopes=event.available_scopes, status=event.status,
                status_at=event.status_at, settings=event.settings, tokens=event.tokens,
                metadata=event.metadata, updated_at=event.updated_at,
            )  # fmt: skip
        case Live(), IssuerDeleted():
            return Deleted(state.id, state.account_id)
        case Live(), AuthMethodCreated() | AuthMethodUpdated() | AuthMethodDeleted():
            methods = auth_methods.evolve(state.methods, event)
            return msgspec.structs.replace(state, methods=methods)
        case _:
            return state
