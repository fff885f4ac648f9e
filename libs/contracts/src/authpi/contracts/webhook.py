"""Events owned by the webhook service (platform.md 6.3, 7): the Webhook aggregate.

`webhook.created` / `webhook.updated` carry the webhook's public snapshot (platform.md 6.3:
"snapshot without secrets"): the auth type and the secrets' hints, never a signing secret or a
bearer token; those are wrapped with the KEK in the service's `webhook_secrets` table, written
in the same transaction. Status changes are `webhook.paused` (an admin disables the endpoint, or
the circuit breaker opens, or a failing endpoint is disabled by the system) and
`webhook.resumed` (re-enabled, or the breaker closes); `webhook.updated` never changes the
status. The account is in the metadata, and in the snapshot (the Webhook object shows it).

The IntegratorCredential aggregate (issue 12) is the webhook service's too: an account's NATS user
for the public event stream. Its events are internal (never public events, never delivered):
`integrator-credential.issued` carries the password's bcrypt hash, a digest nats-server checks
itself, never the password; `integrator-credential.revoked` ends it. Who did it is the envelope's
actor, as for every event."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.contracts.base import Event


class WebhookAuthInfo(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The public part of a webhook's auth (platform.md 7.1): its type and the secrets' hints."""

    type: str  # none | bearer | signature | bearer+signature
    signature_algorithm: str | None = None  # "hmac-sha256" when signed
    signature_secret_hint: str | None = None  # "..." + the secret's last 6 characters
    bearer_token_hint: str | None = None  # "..." + the token's last 6 characters


class WebhookSnapshot(Event, frozen=True, kw_only=True):
    """The webhook's public fields, as created or after an update. `events` None = every type,
    current and future (platform.md 7.3); `subjects` None = no subject filter."""

    id: str
    account_id: str
    name: str
    description: str | None = None
    url: str
    status: str = "active"  # active | disabled | failing
    status_reason: str | None = None
    status_by: str | None = None
    auth: WebhookAuthInfo
    events: list[str] | None = None
    subjects: list[dict[str, str]] | None = None
    retry: dict[str, Any] | None = None
    circuit_breaker: dict[str, Any] | None = None
    metadata: dict[str, Any] = {}


class WebhookCreated(WebhookSnapshot, frozen=True, kw_only=True, tag="webhook.created"):
    status_at: int | None = None
    created_at: int


class WebhookUpdated(WebhookSnapshot, frozen=True, kw_only=True, tag="webhook.updated"):
    """`changed` names the fields that changed (`auth` when a secret was regenerated: its hint
    moved; `rotated` says which secret: `signature` keeps signing in parallel for 24 hours,
    platform.md 7.1)."""

    changed: list[str]
    rotated: list[str] = []  # signature | bearer
    updated_at: int


class WebhookDeleted(Event, frozen=True, kw_only=True, tag="webhook.deleted"):
    """Soft delete: the webhook stays listable with `status=deleted`; its secrets are destroyed
    and its pending deliveries cancelled."""

    id: str
    name: str
    url: str
    deleted_at: int


class WebhookStatusChange(Event, frozen=True, kw_only=True):
    id: str
    status: str
    status_reason: str | None = None
    status_by: str | None = None  # "system" for the circuit breaker
    status_at: int


class WebhookPaused(WebhookStatusChange, frozen=True, kw_only=True, tag="webhook.paused"):
    """To `disabled` (an admin, or the system after a long failure) or `failing` (the circuit
    breaker opened, platform.md 7.7)."""


class WebhookResumed(WebhookStatusChange, frozen=True, kw_only=True, tag="webhook.resumed"):
    """Back to `active`: re-enabled by an admin, or the breaker closed."""


WebhookEvent = WebhookCreated | WebhookUpdated | WebhookDeleted | WebhookPaused | WebhookResumed


class IntegratorCredentialIssued(Event, frozen=True, kw_only=True,
                                 tag="integrator-credential.issued"):  # fmt: skip
    """A NATS user that may read `account_id`'s public events only (its own durable consumer,
    named `user`, filtered to the account's public subjects)."""

    id: str  # intc_…
    account_id: str
    user: str  # the NATS user name: a subject token, also the name of its durable consumer
    password_bcrypt: str  # bcrypt digest of the password (shown once, never stored in clear)
    name: str = ""
    issued_at: int


class IntegratorCredentialRevoked(Event, frozen=True, kw_only=True,
                                  tag="integrator-credential.revoked"):  # fmt: skip
    """Final: the NATS server stops accepting the user at its next reload."""

    id: str
    account_id: str
    user: str
    revoked_at: int


IntegratorCredentialEvent = IntegratorCredentialIssued | IntegratorCredentialRevoked

# Every event type the webhook service owns (the catalogue and the relay's permissions).
WebhookServiceEvent = WebhookEvent | IntegratorCredentialEvent
