"""The Webhook aggregate (platform.md 7.1, 7.2, 7.7): an account's endpoint, its filters, its
delivery settings, its auth (secrets live outside the events: only their hints are here) and
its status.

Statuses: `active`, `disabled` (an admin, or the system after a long failure) and `failing`
(the circuit breaker is open). An admin PATCH sets `active` or `disabled`; `active` also closes
the breaker. The system moves active -> failing (`OpenCircuit`), failing -> active
(`CloseCircuit`) and failing -> disabled (`DisableFailing`); each is a no-op in any other state,
so the delivery engine may repeat it. Every status change is `webhook.paused` or
`webhook.resumed`; field changes are `webhook.updated`. Delete is soft: the stream ends in
`Deleted`, and the id answers 404 afterwards."""

from __future__ import annotations

from typing import Any, assert_never

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.webhook import (
    WebhookAuthInfo,
    WebhookCreated,
    WebhookDeleted,
    WebhookPaused,
    WebhookResumed,
    WebhookUpdated,
)
from authpi.errors import Conflict, InsufficientScope, NotFound
from authpi.web.etag import check_if_match, etag_of, strictly_after
from authpi.web.metadata import merge_metadata
from authpi.webhook.domain.commands import (
    CloseCircuit,
    CreateWebhook,
    DeleteWebhook,
    DisableFailing,
    Fresh,
    OpenCircuit,
    UpdateWebhook,
    WebhookCommand,
)
from authpi.webhook.domain.options import SIGNATURE_ALGORITHM, bad

SYSTEM = "system"
CIRCUIT_OPEN = "circuit_open"
CIRCUIT_CLOSED = "circuit_closed"
CIRCUIT_OPEN_EXPIRED = "circuit_open_expired"
ADMIN_STATUSES = ("active", "disabled")
STATUSES = ("active", "disabled", "failing")
_FIELDS = ("name", "description", "url", "events", "subjects", "retry", "circuit_breaker",
           "metadata")  # fmt: skip


class Absent(msgspec.Struct, frozen=True):
    pass


class Live(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    name: str
    description: str | None
    url: str
    status: str
    status_at: int | None
    status_reason: str | None
    status_by: str | None
    auth: WebhookAuthInfo
    events: list[str] | None
    subjects: list[dict[str, str]] | None
    retry: dict[str, Any] | None
    circuit_breaker: dict[str, Any] | None
    metadata: dict[str, Any]
    created_at: int
    updated_at: int | None = None

    @property
    def etag(self) -> str:
        return etag_of(self.created_at, self.updated_at)

    def changed_at(self, now: int) -> int:
        return strictly_after(now, self.updated_at or self.created_at)


class Deleted(msgspec.Struct, frozen=True):
    id: str
    account_id: str


Webhook = Absent | Live | Deleted
INITIAL: Webhook = Absent()


def signs(auth_type: str) -> bool:
    return "signature" in auth_type


def bears(auth_type: str) -> bool:
    return "bearer" in auth_type


def auth_info(
    auth_type: str, signature_hint: str | None, bearer_hint: str | None
) -> WebhookAuthInfo:
    return WebhookAuthInfo(
        type=auth_type,
        signature_algorithm=SIGNATURE_ALGORITHM if signs(auth_type) else None,
        signature_secret_hint=signature_hint if signs(auth_type) else None,
        bearer_token_hint=bearer_hint if bears(auth_type) else None,
    )


def decide(cmd: WebhookCommand, state: Webhook) -> list[Event]:
    match cmd, state:
        case CreateWebhook(), Absent():
            return [_created(cmd)]
        case CreateWebhook(), _:
            raise Conflict("the webhook already exists", reason="webhook.exists")
        case OpenCircuit(), Live(status="active"):
            return [_status(WebhookPaused, state, cmd.now, "failing", CIRCUIT_OPEN, SYSTEM)]
        case CloseCircuit(), Live(status="failing"):
            return [_status(WebhookResumed, state, cmd.now, "active", CIRCUIT_CLOSED, SYSTEM)]
        case DisableFailing(), Live(status="failing"):
            return [_status(WebhookPaused, state, cmd.now, "disabled", CIRCUIT_OPEN_EXPIRED,
                            SYSTEM)]  # fmt: skip
        case OpenCircuit() | CloseCircuit() | DisableFailing(), _:
            return []  # repeat-safe: the webhook is not (or no longer) in that state
        case UpdateWebhook() | DeleteWebhook(), Live() if state.account_id == cmd.account_id:
            check_if_match(cmd.if_match, state.etag)
            if isinstance(cmd, DeleteWebhook):
                return [WebhookDeleted(id=state.id, name=state.name, url=state.url,
                                       deleted_at=state.changed_at(cmd.now))]  # fmt: skip
            return _updated(cmd, state)
        case UpdateWebhook() | DeleteWebhook(), _:
            raise NotFound("no such webhook", reason="webhook.not_found")
        case _:
            assert_never(cmd)


def _created(cmd: CreateWebhook) -> WebhookCreated:
    fresh = cmd.fresh
    return WebhookCreated(
        id=cmd.webhook_id, account_id=cmd.account_id, name=cmd.name,
        description=cmd.description, url=cmd.url, status=cmd.status,
        status_reason=cmd.status_reason if cmd.status != "active" else None,
        status_by=cmd.status_by if cmd.status != "active" else None,
        status_at=cmd.now if cmd.status != "active" else None,
        auth=auth_info(cmd.auth_type, fresh.signature_hint, fresh.bearer_hint),
        events=cmd.events, subjects=cmd.subjects, retry=cmd.retry,
        circuit_breaker=cmd.circuit_breaker, metadata=cmd.metadata, created_at=cmd.now,
    )  # fmt: skip


def _status(
    kind: type[WebhookPaused] | type[WebhookResumed], hook: Live, now: int, status: str,
    reason: str | None, by: str | None,
) -> WebhookPaused | WebhookResumed:  # fmt: skip
    return kind(id=hook.id, status=status, status_reason=reason, status_by=by,
                status_at=hook.changed_at(now))  # fmt: skip


def _new_auth(cmd: UpdateWebhook, hook: Live) -> tuple[WebhookAuthInfo, list[str]]:
    """The auth after the PATCH and which secrets were issued: a new one wherever the type
    needs one it lacks, or a regeneration was asked for."""
    auth_type = hook.auth.type if isinstance(cmd.auth_type, msgspec.UnsetType) else cmd.auth_type
    if cmd.regenerate_signature and not signs(auth_type):
        raise bad("auth.regenerate_secret", "needs an auth type with a signature")
    if cmd.regenerate_bearer and not bears(auth_type):
        raise bad("auth.regenerate_bearer_token", "needs an auth type with a bearer token")
    fresh: Fresh = cmd.fresh
    rotated: list[str] = []
    signature_hint = hook.auth.signature_secret_hint
    if signs(auth_type) and (cmd.regenerate_signature or signature_hint is None):
        signature_hint = fresh.signature_hint
        rotated.append("signature")
    bearer_hint = hook.auth.bearer_token_hint
    if bears(auth_type) and (cmd.regenerate_bearer or bearer_hint is None):
        bearer_hint = fresh.bearer_hint
        rotated.append("bearer")
    if rotated and not cmd.may_issue_secrets:
        # Toggling `auth.type` (signature -> none -> signature) issues a fresh secret as surely
        # as `regenerate_secret` does, and hands it out in the response.
        raise InsufficientScope(
            "an update that issues a webhook secret requires the webhooks:manage scope",
            reason="auth.scope_missing",
        )
    return auth_info(auth_type, signature_hint, bearer_hint), rotated


def _updated(cmd: UpdateWebhook, hook: Live) -> list[Event]:
    before: dict[str, Any] = {f: getattr(hook, f) for f in _FIELDS}
    after = dict(before)
    for field in _FIELDS:
        value = getattr(cmd, field)
        if value is not msgspec.UNSET and field != "metadata":
            after[field] = value
    after["metadata"] = merge_metadata(hook.metadata, cmd.metadata)
    auth, rotated = _new_auth(cmd, hook)
    changed = [f for f in _FIELDS if after[f] != before[f]]
    if auth != hook.auth:
        changed.append("auth")
    at = hook.changed_at(cmd.now)
    out: list[Event] = []
    if changed:
        out.append(WebhookUpdated(
            id=hook.id, account_id=hook.account_id, status=hook.status,
            status_reason=hook.status_reason, status_by=hook.status_by, auth=auth,
            changed=changed, rotated=rotated, updated_at=at, **after,
        ))  # fmt: skip
    status = cmd.status
    if isinstance(status, str) and status != hook.status:
        reason = None if isinstance(cmd.status_reason, msgspec.UnsetType) else cmd.status_reason
        by = None if isinstance(cmd.status_by, msgspec.UnsetType) else cmd.status_by
        kind = WebhookResumed if status == "active" else WebhookPaused
        out.append(kind(id=hook.id, status=status, status_reason=reason, status_by=by,
                        status_at=at))  # fmt: skip
    return out


def evolve(state: Webhook, event: Event) -> Webhook:
    match state, event:
        case Absent(), WebhookCreated():
            return Live(
                id=event.id, account_id=event.account_id, name=event.name,
                description=event.description, url=event.url, status=event.status,
                status_at=event.status_at, status_reason=event.status_reason,
                status_by=event.status_by, auth=event.auth, events=event.events,
                subjects=event.subjects, retry=event.retry,
                circuit_breaker=event.circuit_breaker, metadata=event.metadata,
                created_at=event.created_at,
            )  # fmt: skip
        case Live(), WebhookUpdated():
            return msgspec.structs.replace(
                state, **{f: getattr(event, f) for f in _FIELDS}, auth=event.auth,
                updated_at=event.updated_at,
            )  # fmt: skip
        case Live(), WebhookPaused() | WebhookResumed():
            return msgspec.structs.replace(
                state, status=event.status, status_reason=event.status_reason,
                status_by=event.status_by, status_at=event.status_at,
                updated_at=event.status_at,
            )  # fmt: skip
        case Live(), WebhookDeleted():
            return Deleted(state.id, state.account_id)
        case _:
            return state
