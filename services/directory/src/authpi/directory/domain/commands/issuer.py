"""Issuer and auth-method commands (internal; never published). Times and ids are decided by the
handler; PATCH fields left out are `UNSET`, and a settings or metadata patch is merged in
`decide`, against the folded state."""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType


class CreateIssuer(msgspec.Struct, frozen=True, kw_only=True):
    issuer_id: str
    account_id: str
    name: str
    now: int
    description: str | None = None
    links: dict[str, Any] = {}
    available_scopes: list[str] = []
    status: str = "active"
    settings: dict[str, Any] = {}
    metadata: dict[str, Any] = {}


class UpdateIssuer(msgspec.Struct, frozen=True, kw_only=True):
    issuer_id: str
    account_id: str
    now: int
    if_match: str | None = None
    name: str | UnsetType = UNSET
    description: str | UnsetType | None = UNSET
    links: dict[str, Any] | UnsetType | None = UNSET
    available_scopes: list[str] | UnsetType | None = UNSET
    status: str | UnsetType = UNSET
    settings: dict[str, Any] | UnsetType | None = UNSET
    metadata: dict[str, Any] | UnsetType | None = UNSET


class DeleteIssuer(msgspec.Struct, frozen=True, kw_only=True):
    issuer_id: str
    account_id: str
    now: int
    if_match: str | None = None


class CreateAuthMethod(msgspec.Struct, frozen=True, kw_only=True):
    issuer_id: str
    account_id: str
    method_id: str
    type: str
    now: int
    provider: str | None = None
    name: str | None = None
    enabled: bool = True
    login: bool = True
    signup: bool = True
    settings: dict[str, Any] = {}
    metadata: dict[str, Any] = {}


class UpdateAuthMethod(msgspec.Struct, frozen=True, kw_only=True):
    issuer_id: str
    account_id: str
    method_id: str
    now: int
    if_match: str | None = None
    name: str | UnsetType | None = UNSET
    enabled: bool | UnsetType = UNSET
    login: bool | UnsetType = UNSET
    signup: bool | UnsetType = UNSET
    settings: dict[str, Any] | UnsetType | None = UNSET
    metadata: dict[str, Any] | UnsetType | None = UNSET


class DeleteAuthMethod(msgspec.Struct, frozen=True, kw_only=True):
    issuer_id: str
    account_id: str
    method_id: str
    now: int
    if_match: str | None = None
