"""Client events (platform.md 6.3). Each carries what the token endpoint needs to authenticate
the client and mint its tokens without calling the directory: issuer, status, grant types,
allowed scopes and audiences, token lifetimes, signing algorithm, organization restriction and
the SHA-256 digest of the secret (never the secret itself). The account is in the metadata."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.contracts.base import Event


class OrganizationRestriction(msgspec.Struct, frozen=True, kw_only=True):
    """Which organizations may appear in the client's tokens (idp-api.md 11.6)."""

    mode: str = "all"  # all | none | allowlist
    allowlist: list[str] = []


class ClientConfig(msgspec.Struct, frozen=True, kw_only=True):
    """A client's protocol settings (idp-api.md 2.2); TTLs in seconds."""

    application_type: str | None = None
    redirect_uris: list[str] = []
    post_logout_redirect_uris: list[str] = []
    grant_types: list[str] = []
    response_types: list[str] = []
    scopes: list[str] = []
    audiences: list[str] = []
    access_token_ttl: int = 1800
    refresh_token_ttl: int = 604_800
    id_token_ttl: int = 1800
    response_signature_alg: str = "ES256"
    organizations: OrganizationRestriction = OrganizationRestriction()


class ClientCreated(Event, frozen=True, kw_only=True, tag="client.created"):
    id: str
    issuer_id: str
    name: str
    client_type: str  # spa | native | web | m2m
    confidential: bool
    description: str | None = None
    logo_url: str | None = None
    status: str = "active"
    config: ClientConfig = ClientConfig()
    metadata: dict[str, Any] = {}
    # SHA-256 hex digest and last characters of the secret; None for public clients.
    secret_sha256: str | None = None
    secret_hint: str | None = None
    created_at: int


class ClientUpdated(Event, frozen=True, kw_only=True, tag="client.updated"):
    """The client after the change (status changes are client.blocked / client.unblocked)."""

    id: str
    issuer_id: str
    changed: list[str]
    name: str
    description: str | None = None
    logo_url: str | None = None
    config: ClientConfig = ClientConfig()
    metadata: dict[str, Any] = {}
    updated_at: int


class ClientSecretRotated(Event, frozen=True, kw_only=True, tag="client.secret.rotated"):
    """A new secret digest; the previous digest still authenticates until
    `previous_valid_until` (15 minutes, core-api.md 3.8)."""

    id: str
    issuer_id: str
    secret_sha256: str
    secret_hint: str
    previous_secret_sha256: str | None = None
    previous_valid_until: int
    secret_rotated_at: int


class ClientBlocked(Event, frozen=True, kw_only=True, tag="client.blocked"):
    id: str
    issuer_id: str
    status: str = "disabled"
    status_reason: str | None = None
    status_by: str | None = None
    status_at: int


class ClientUnblocked(Event, frozen=True, kw_only=True, tag="client.unblocked"):
    id: str
    issuer_id: str
    status: str = "active"
    status_reason: str | None = None
    status_by: str | None = None
    status_at: int


class ClientDeleted(Event, frozen=True, kw_only=True, tag="client.deleted"):
    """Soft delete: the client stops authenticating at once (status `deleted`)."""

    id: str
    issuer_id: str
    deleted_at: int


ClientEvent = (
    ClientCreated
    | ClientUpdated
    | ClientSecretRotated
    | ClientBlocked
    | ClientUnblocked
    | ClientDeleted
)
