"""Webhook commands (internal; never published). The handler checks the input, decides the id,
the time and the candidate secrets and passes them in: `fresh` holds the hints of a signing
secret and a bearer token it generated (or the caller supplied); `decide` uses them only where
the webhook needs a new one. The plaintexts stay in the handler, which stores what the events
say was issued. PATCH fields left out are `UNSET`."""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType


class Fresh(msgspec.Struct, frozen=True, kw_only=True):
    signature_hint: str
    bearer_hint: str


class CreateWebhook(msgspec.Struct, frozen=True, kw_only=True):
    webhook_id: str
    account_id: str
    now: int
    name: str
    description: str | None = None
    url: str
    status: str = "active"  # active | disabled
    status_reason: str | None = None
    status_by: str | None = None
    auth_type: str
    events: list[str] | None = None
    subjects: list[dict[str, str]] | None = None
    retry: dict[str, Any] | None = None
    circuit_breaker: dict[str, Any] | None = None
    metadata: dict[str, Any] = {}
    fresh: Fresh


class UpdateWebhook(msgspec.Struct, frozen=True, kw_only=True):
    webhook_id: str
    account_id: str
    now: int
    if_match: str | None = None
    fresh: Fresh
    name: str | UnsetType = UNSET
    description: str | UnsetType | None = UNSET
    url: str | UnsetType = UNSET
    events: list[str] | UnsetType | None = UNSET
    subjects: list[dict[str, str]] | UnsetType | None = UNSET
    retry: dict[str, Any] | UnsetType | None = UNSET
    circuit_breaker: dict[str, Any] | UnsetType | None = UNSET
    metadata: dict[str, Any] | UnsetType | None = UNSET
    status: str | UnsetType = UNSET  # active | disabled (an admin)
    status_reason: str | UnsetType | None = UNSET
    status_by: str | UnsetType | None = UNSET
    auth_type: str | UnsetType = UNSET
    regenerate_signature: bool = False  # `auth.regenerate_secret`, or a supplied new secret
    regenerate_bearer: bool = False
    # Whether the caller may be handed a new secret (`webhooks:manage`, core-api.md 5.2): an
    # update that would issue one otherwise (a regeneration, or an auth type gaining a secret it
    # lacked) is refused.
    may_issue_secrets: bool = True


class DeleteWebhook(msgspec.Struct, frozen=True, kw_only=True):
    webhook_id: str
    account_id: str
    now: int
    if_match: str | None = None


class OpenCircuit(msgspec.Struct, frozen=True, kw_only=True):
    """The breaker opened (platform.md 7.7): active -> failing."""

    webhook_id: str
    now: int


class CloseCircuit(msgspec.Struct, frozen=True, kw_only=True):
    """A probe succeeded: failing -> active."""

    webhook_id: str
    now: int


class DisableFailing(msgspec.Struct, frozen=True, kw_only=True):
    """Failing too long: failing -> disabled, by the system."""

    webhook_id: str
    now: int


SystemCommand = OpenCircuit | CloseCircuit | DisableFailing
WebhookCommand = CreateWebhook | UpdateWebhook | DeleteWebhook | SystemCommand


class IssueIntegratorCredential(msgspec.Struct, frozen=True, kw_only=True):
    """The handler mints the id and the user and hashes the password; only the digest is here."""

    credential_id: str
    account_id: str
    user: str
    password_bcrypt: str
    name: str = ""
    now: int


class RevokeIntegratorCredential(msgspec.Struct, frozen=True, kw_only=True):
    """`account_id` None: any account's (the operator's CLI); otherwise only that account's."""

    credential_id: str
    account_id: str | None = None
    now: int


IntegratorCredentialCommand = IssueIntegratorCredential | RevokeIntegratorCredential
