"""The public event (platform.md 6.1): what the Events API lists, webhooks deliver and integrators
read from the public stream. It is built from a stored event or a fact by the webhook service's
audit log, never from the internal envelope as is, and carries no sealed PII, digest or secret.

`WEBHOOK_EVENT_TYPES` are the 106 exact type names of platform.md 6.3 (contract 6.1
`WebhookEventType`): the only types that become public events."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from authpi.crypto.ids import crockford32

SPEC_VERSION = "1"
SOURCE = "com.authpi/v1"


class PublicEvent(msgspec.Struct, frozen=True, kw_only=True):
    spec: str = SPEC_VERSION
    id: str  # evt_… (public_event_id)
    trace: str | None = None
    type: str
    source: str = SOURCE
    trigger: str | None = None  # api | idp | system
    auth: dict[str, Any] | None = None
    subject: dict[str, str]  # always account_id, plus issuer_id when issuer-scoped, plus 6.3's keys
    timestamp: float  # Unix epoch milliseconds
    data: dict[str, Any]


def public_event_id(event_id: uuid.UUID | str) -> str:
    """`evt_` + the 26-character Crockford base32 of a stored event's UUIDv7: time-sortable, and
    the same on every replay of that event."""
    value = (event_id if isinstance(event_id, uuid.UUID) else uuid.UUID(event_id)).int
    return "evt_" + crockford32(value)


WEBHOOK_EVENT_TYPES: tuple[str, ...] = (
    "session.created",
    "session.updated",
    "session.expired",
    "session.terminated",
    "session.compromised",
    "session.token-refreshed",
    "machine.token.issued",
    "user.created",
    "user.updated",
    "user.deleted",
    "user.blocked",
    "user.unblocked",
    "user.verification.succeeded",
    "user.verification.failed",
    "user.password.changed",
    "user.password.reset-requested",
    "user.password.reset",
    "user.login-link.requested",
    "user.login-link.consumed",
    "user.verifier.created",
    "user.verifier.updated",
    "user.verifier.deleted",
    "user.email.change-requested",
    "user.email.changed",
    "user.email.verified",
    "user.approval.requested",
    "user.approval.approved",
    "user.approval.rejected",
    "user.mfa.factor-created",
    "user.mfa.factor-deleted",
    "user.mfa.backup-codes.regenerated",
    "user.mfa.backup-codes.low",
    "user.mfa.verification.succeeded",
    "user.mfa.verification.failed",
    "user.device.trusted",
    "user.device.revoked",
    "user.consent.granted",
    "user.consent.revoked",
    "user.sso.provisioned",
    "user.sso.linked",
    "user.personal-token.created",
    "user.personal-token.updated",
    "user.personal-token.deleted",
    "client.created",
    "client.updated",
    "client.deleted",
    "client.secret.rotated",
    "client.blocked",
    "client.unblocked",
    "api-key.created",
    "api-key.updated",
    "api-key.deleted",
    "api-key.blocked",
    "api-key.unblocked",
    "issuer.created",
    "issuer.updated",
    "issuer.deleted",
    "issuer.auth-method.created",
    "issuer.auth-method.updated",
    "issuer.auth-method.deleted",
    "organization.created",
    "organization.updated",
    "organization.deleted",
    "organization.suspended",
    "organization.reactivated",
    "organization.membership.created",
    "organization.membership.updated",
    "organization.membership.deleted",
    "organization.group.created",
    "organization.group.updated",
    "organization.group.deleted",
    "organization.invitation.created",
    "organization.invitation.accepted",
    "organization.invitation.declined",
    "organization.invitation.deleted",
    "organization.sso.enabled",
    "organization.sso.disabled",
    "organization.sso.updated",
    "organization.sso.domain-created",
    "organization.sso.domain-verified",
    "organization.sso.domain-deleted",
    "agent.created",
    "agent.updated",
    "agent.deleted",
    "agent.verifier.added",
    "agent.verifier.removed",
    "account.created",
    "account.updated",
    "account.deleted",
    "account.domain.added",
    "account.domain.removed",
    "account.domain.assigned",
    "account.domain.unassigned",
    "account.credits.updated",
    "account.credits.depleted",
    "webhook.created",
    "webhook.updated",
    "webhook.deleted",
    "webhook.paused",
    "webhook.resumed",
    "email.sent",
    "email.failed",
    "auth.flow.rate-limited",
    "auth.flow.expired",
    "auth.flow.replay-attempt",
    "auth.flow.device-mismatch",
)

WEBHOOK_EVENT_TYPE_SET: frozenset[str] = frozenset(WEBHOOK_EVENT_TYPES)
