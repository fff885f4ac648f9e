"""An issuer's auth methods (core-api.md 3.7 "Auth methods"): password, magic link, one-time
code, passkey and social providers. They live in the issuer's stream; this module decides and
folds them. One method per type per issuer, and one per provider for `social`."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.directory import AuthMethodCreated, AuthMethodDeleted, AuthMethodUpdated
from authpi.directory.domain.checks import deep_merge, limited_size, secret_free
from authpi.directory.domain.commands.issuer import (
    CreateAuthMethod,
    DeleteAuthMethod,
    UpdateAuthMethod,
)
from authpi.errors import Conflict, NotFound
from authpi.web.etag import check_if_match, etag_of, strictly_after
from authpi.web.metadata import merge_metadata

TYPES = ("password", "magic_link", "otp", "passkey", "social")
_FIELDS = ("name", "enabled", "login", "signup", "settings", "metadata")


class Method(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str
    provider: str | None
    name: str | None
    enabled: bool
    login: bool
    signup: bool
    settings: dict[str, Any]
    metadata: dict[str, Any]
    created_at: int
    updated_at: int | None = None

    @property
    def etag(self) -> str:
        return etag_of(self.created_at, self.updated_at)

    @property
    def slot(self) -> tuple[str, str | None]:
        return self.type, self.provider if self.type == "social" else None


MethodCommand = CreateAuthMethod | UpdateAuthMethod | DeleteAuthMethod


def decide(cmd: MethodCommand, issuer_id: str, methods: dict[str, Method]) -> list[Event]:
    current = methods.get(cmd.method_id)
    match cmd:
        case CreateAuthMethod():
            return _created(cmd, issuer_id, methods)
        case _ if current is None:
            raise NotFound("no such auth method", reason="auth_method.not_found")
        case UpdateAuthMethod():
            check_if_match(cmd.if_match, current.etag)
            return _updated(cmd, issuer_id, current)
        case DeleteAuthMethod():
            check_if_match(cmd.if_match, current.etag)
            at = strictly_after(cmd.now, current.updated_at or current.created_at)
            return [AuthMethodDeleted(id=current.id, issuer_id=issuer_id, deleted_at=at)]
    raise AssertionError(f"unhandled command {cmd!r}")


def _created(cmd: CreateAuthMethod, issuer_id: str, methods: dict[str, Method]) -> list[Event]:
    if cmd.method_id in methods:
        raise Conflict("the auth method already exists", reason="auth_method.exists")
    slot = (cmd.type, cmd.provider if cmd.type == "social" else None)
    if any(m.slot == slot for m in methods.values()):
        what = f"a {cmd.provider} social" if cmd.type == "social" else f"a {cmd.type}"
        raise Conflict(f"the issuer already has {what} auth method", reason="auth_method.dup")
    limited_size(cmd.settings, "settings")
    secret_free(cmd.settings, "settings")
    return [AuthMethodCreated(
        id=cmd.method_id, issuer_id=issuer_id, method_type=cmd.type, provider=cmd.provider,
        name=cmd.name, enabled=cmd.enabled, login=cmd.login, signup=cmd.signup,
        settings=cmd.settings, metadata=cmd.metadata, created_at=cmd.now,
    )]  # fmt: skip


def _updated(cmd: UpdateAuthMethod, issuer_id: str, method: Method) -> list[Event]:
    after: dict[str, Any] = {f: getattr(method, f) for f in _FIELDS}
    for field in ("name", "enabled", "login", "signup"):
        value = getattr(cmd, field)
        if value is not msgspec.UNSET:
            after[field] = value
    if cmd.settings is not msgspec.UNSET:
        after["settings"] = deep_merge(method.settings, cmd.settings) if cmd.settings else {}
        limited_size(after["settings"], "settings")
        secret_free(after["settings"], "settings")
    after["metadata"] = merge_metadata(method.metadata, cmd.metadata)
    changed = [f for f in _FIELDS if after[f] != getattr(method, f)]
    if not changed:
        return []
    at = strictly_after(cmd.now, method.updated_at or method.created_at)
    return [AuthMethodUpdated(
        id=method.id, issuer_id=issuer_id, changed=changed, method_type=method.type,
        provider=method.provider, updated_at=at, **after,
    )]  # fmt: skip


def evolve(methods: dict[str, Method], event: Event) -> dict[str, Method]:
    match event:
        case AuthMethodCreated():
            fields = msgspec.structs.asdict(event)
            fields.pop("issuer_id")
            fields["type"] = fields.pop("method_type")
            return {**methods, event.id: Method(**fields)}
        case AuthMethodUpdated() if event.id in methods:
            fields = {f: getattr(event, f) for f in _FIELDS}
            updated = msgspec.structs.replace(
                methods[event.id], updated_at=event.updated_at, **fields
            )
            return {**methods, event.id: updated}
        case AuthMethodDeleted():
            return {k: v for k, v in methods.items() if k != event.id}
        case _:
            return methods
