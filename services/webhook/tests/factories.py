"""Builders of the webhook service's test data: events and commands of the Webhook decider. Each
takes overrides for what a test cares about."""

from __future__ import annotations

from typing import Any

from authpi.contracts.webhook import (
    WebhookAuthInfo,
    WebhookCreated,
    WebhookDeleted,
    WebhookPaused,
    WebhookResumed,
    WebhookUpdated,
)
from authpi.webhook.domain.commands import (
    CloseCircuit,
    CreateWebhook,
    DeleteWebhook,
    DisableFailing,
    Fresh,
    OpenCircuit,
    UpdateWebhook,
)

WH, ACC, OTHER_ACC, T0 = "wh_" + "a" * 25, "acc_" + "b" * 25, "acc_" + "c" * 25, 1_781_222_400_000
URL = "https://hooks.example.com/authpi"
FRESH = Fresh(signature_hint="...sig001", bearer_hint="...brr001")
FRESH2 = Fresh(signature_hint="...sig002", bearer_hint="...brr002")
SIGNED = WebhookAuthInfo(type="signature", signature_algorithm="hmac-sha256",
                         signature_secret_hint="...sig001")  # fmt: skip


def create_webhook(**overrides: Any) -> CreateWebhook:
    fields: dict[str, Any] = {
        "webhook_id": WH, "account_id": ACC, "now": T0, "name": "User Events", "url": URL,
        "auth_type": "signature", "events": ["user.created"], "fresh": FRESH, **overrides,
    }  # fmt: skip
    return CreateWebhook(**fields)


def webhook_created(**overrides: Any) -> WebhookCreated:
    fields: dict[str, Any] = {
        "id": WH, "account_id": ACC, "name": "User Events", "url": URL, "auth": SIGNED,
        "events": ["user.created"], "created_at": T0, **overrides,
    }  # fmt: skip
    return WebhookCreated(**fields)


def update_webhook(at: int = T0 + 10, **overrides: Any) -> UpdateWebhook:
    fields: dict[str, Any] = {"webhook_id": WH, "account_id": ACC, "now": at, "fresh": FRESH2,
                              **overrides}  # fmt: skip
    return UpdateWebhook(**fields)


def webhook_updated(changed: list[str], at: int = T0 + 10, **overrides: Any) -> WebhookUpdated:
    fields: dict[str, Any] = {
        "id": WH, "account_id": ACC, "name": "User Events", "url": URL, "auth": SIGNED,
        "events": ["user.created"], "changed": changed, "updated_at": at, **overrides,
    }  # fmt: skip
    return WebhookUpdated(**fields)


def delete_webhook(at: int = T0 + 10, **overrides: Any) -> DeleteWebhook:
    return DeleteWebhook(**{"webhook_id": WH, "account_id": ACC, "now": at, **overrides})


def webhook_deleted(at: int = T0 + 10) -> WebhookDeleted:
    return WebhookDeleted(id=WH, name="User Events", url=URL, deleted_at=at)


def paused(status: str, at: int, reason: str | None = None, by: str | None = None) -> WebhookPaused:
    return WebhookPaused(id=WH, status=status, status_reason=reason, status_by=by, status_at=at)


def resumed(at: int, reason: str | None = None, by: str | None = None) -> WebhookResumed:
    return WebhookResumed(id=WH, status="active", status_reason=reason, status_by=by,
                          status_at=at)  # fmt: skip


def open_circuit(at: int = T0 + 10) -> OpenCircuit:
    return OpenCircuit(webhook_id=WH, now=at)


def close_circuit(at: int = T0 + 20) -> CloseCircuit:
    return CloseCircuit(webhook_id=WH, now=at)


def disable_failing(at: int = T0 + 20) -> DisableFailing:
    return DisableFailing(webhook_id=WH, now=at)
