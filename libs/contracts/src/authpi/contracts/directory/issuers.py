"""Issuer and issuer auth-method events (platform.md 6.3). Created and updated events carry the
full public snapshot (updated adds `changed`), so that consumers such as the token service keep
an issuer's token lifetimes and signing algorithms without calling the directory."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.contracts.base import Event


class TokenPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """What the IdP runtime reads from an issuer: lifetimes in seconds, signing algorithms."""

    access_token_ttl: int = 1800
    refresh_token_ttl: int = 604_800
    id_token_ttl: int = 1800
    session_max_age: int = 604_800
    session_idle_timeout: int = 43_200
    signing_algs: list[str] = msgspec.field(default_factory=lambda: ["ES256", "EdDSA", "RS256"])
    default_signature_alg: str = "ES256"


class IssuerCreated(Event, frozen=True, kw_only=True, tag="issuer.created"):
    id: str
    account_id: str
    name: str
    description: str | None = None
    links: dict[str, Any] = {}
    available_scopes: list[str] = []
    status: str = "active"
    settings: dict[str, Any] = {}
    tokens: TokenPolicy = TokenPolicy()
    metadata: dict[str, Any] = {}
    created_at: int


class IssuerUpdated(Event, frozen=True, kw_only=True, tag="issuer.updated"):
    """The issuer after the change; `status_at` moves only when `status` is in `changed`."""

    id: str
    account_id: str
    changed: list[str]
    name: str
    description: str | None = None
    links: dict[str, Any] = {}
    available_scopes: list[str] = []
    status: str = "active"
    status_at: int | None = None
    settings: dict[str, Any] = {}
    tokens: TokenPolicy = TokenPolicy()
    metadata: dict[str, Any] = {}
    updated_at: int


class IssuerDeleted(Event, frozen=True, kw_only=True, tag="issuer.deleted"):
    """Everything beneath the issuer goes with it (core-api.md 3.7)."""

    id: str
    account_id: str
    deleted_at: int


class AuthMethodCreated(Event, frozen=True, kw_only=True, tag="issuer.auth-method.created"):
    id: str
    issuer_id: str
    method_type: str  # password | magic_link | otp | social | passkey
    provider: str | None = None
    name: str | None = None
    enabled: bool = True
    login: bool = True
    signup: bool = True
    settings: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    created_at: int


class AuthMethodUpdated(Event, frozen=True, kw_only=True, tag="issuer.auth-method.updated"):
    id: str
    issuer_id: str
    changed: list[str]
    method_type: str
    provider: str | None = None
    name: str | None = None
    enabled: bool = True
    login: bool = True
    signup: bool = True
    settings: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    updated_at: int


class AuthMethodDeleted(Event, frozen=True, kw_only=True, tag="issuer.auth-method.deleted"):
    id: str
    issuer_id: str
    deleted_at: int


IssuerEvent = (
    IssuerCreated
    | IssuerUpdated
    | IssuerDeleted
    | AuthMethodCreated
    | AuthMethodUpdated
    | AuthMethodDeleted
)
