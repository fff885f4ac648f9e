"""Request and response Structs of the webhook routes (contract 5.12 `Webhook`,
`WebhookListItem`, `CreateWebhookInput`, `WebhooksCreateResponse`, `UpdateWebhook`,
`WebhooksUpdateResponse`; platform.md 7.1), and the checks that turn a body into command fields.

One-time secrets are returned inside `data`, both at `data.signature_secret_plain` /
`data.bearer_token_plain` (as the documentation shows) and inside `data.auth` (the SDK's response
models keep unknown keys only there). A webhook whose `events` is null receives every type; the
contract's `events` is a required array, so responses then list every current type."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec

from authpi.contracts.public import WEBHOOK_EVENT_TYPES
from authpi.errors import FieldProblem, InvalidRequest
from authpi.web.metadata import check_metadata
from authpi.web.text import check_storable
from authpi.webhook.domain.options import (
    SIGNATURE_ALGORITHM,
    bad,
    check_circuit_breaker,
    check_events,
    check_retry,
    check_subjects,
)
from authpi.webhook.domain.urls import UrlPolicy, UrlRefused, check_url
from authpi.webhook.handlers.webhooks import Issued
from authpi.webhook.queries.webhooks import WebhookRow

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Description = Annotated[str, msgspec.Meta(max_length=10_000)]
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]
EventName = Annotated[str, msgspec.Meta(max_length=200)]
Events = Annotated[list[EventName], msgspec.Meta(max_length=500)]
Subjects = Annotated[list[dict[str, Any]], msgspec.Meta(max_length=500)]
Reason = Annotated[str, msgspec.Meta(max_length=1000)]
By = Annotated[str, msgspec.Meta(max_length=200)]
Secret = Annotated[str, msgspec.Meta(max_length=1024)]
AuthType = Literal["none", "bearer", "signature", "bearer+signature"]
AdminStatus = Literal["active", "disabled"]
UNSET = msgspec.UNSET
Unset = msgspec.UnsetType

# A caller-supplied signing secret looks like ours; a bearer token is an RFC 6750 b64token.
_SIGNATURE_SECRET = re.compile(r"^whs_[A-Za-z0-9_-]{32,128}$")
_BEARER_TOKEN = re.compile(r"^[A-Za-z0-9._~+/-]{16,512}=*$")
ALL_EVENTS = list(WEBHOOK_EVENT_TYPES)


class AuthIn(msgspec.Struct, frozen=True, kw_only=True):
    """`auth` of a create or update. Secrets are generated when absent; `regenerate_secret` /
    `regenerate_bearer_token` (update) issue new ones."""

    type: AuthType | Unset = UNSET
    signature_algorithm: str | None = None
    signature_secret: Secret | None = None
    bearer_token: Secret | None = None
    regenerate_secret: bool = False
    regenerate_bearer_token: bool = False


class WebhookCreate(msgspec.Struct, frozen=True, kw_only=True):
    name: Name
    url: Url
    auth: AuthIn | None = None
    events: Events | None = None
    description: Description | None = None
    status: AdminStatus = "active"
    status_reason: Reason | None = None
    status_by: By | None = None
    subjects: Subjects | None = None
    retry: dict[str, Any] | None = None
    circuit_breaker: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    # The older create body (core-api.md 3.19): accepted as an alias of `auth`.
    uses_signature: bool | None = None
    bearer_token: Secret | None = None
    signature_secret: Secret | None = None


class WebhookPatch(msgspec.Struct, frozen=True, kw_only=True):
    name: Name | Unset = UNSET
    description: Description | Unset | None = UNSET
    url: Url | Unset = UNSET
    status: AdminStatus | Unset = UNSET
    status_reason: Reason | Unset | None = UNSET
    status_by: By | Unset | None = UNSET
    auth: AuthIn | Unset = UNSET
    events: Events | Unset | None = UNSET
    subjects: Subjects | Unset | None = UNSET
    retry: dict[str, Any] | Unset | None = UNSET
    circuit_breaker: dict[str, Any] | Unset | None = UNSET
    metadata: dict[str, Any] | Unset | None = UNSET


class WebhookOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    name: str
    description: str | None
    url: str
    status: str
    status_at: int | None
    status_reason: str | None
    status_by: str | None
    auth: dict[str, Any]
    events: list[str]
    subjects: list[dict[str, str]] | None
    retry: dict[str, Any] | None
    circuit_breaker: dict[str, Any] | None
    metadata: dict[str, Any]
    created_at: int
    updated_at: int | None

    @classmethod
    def of(cls, row: WebhookRow) -> WebhookOut:
        return cls(
            id=row.id, account_id=row.account_id, name=row.name, description=row.description,
            url=row.url, status=row.status, status_at=row.status_at,
            status_reason=row.status_reason, status_by=row.status_by, auth=row.auth,
            events=ALL_EVENTS if row.events is None else row.events, subjects=row.subjects,
            retry=row.retry, circuit_breaker=row.circuit_breaker, metadata=row.metadata,
            created_at=row.created_at, updated_at=row.updated_at,
        )  # fmt: skip


class WebhookWithSecrets(WebhookOut, frozen=True, kw_only=True, omit_defaults=True):
    """A create or update response: the secrets it issued, this once."""

    signature_secret_plain: str | None = None
    bearer_token_plain: str | None = None

    @classmethod
    def issued(cls, row: WebhookRow, issued: Issued) -> WebhookWithSecrets:
        base = WebhookOut.of(row)
        plain: dict[str, str] = {}
        if issued.signature_secret is not None:
            plain["signature_secret_plain"] = issued.signature_secret
        if issued.bearer_token is not None:
            plain["bearer_token_plain"] = issued.bearer_token
        fields = msgspec.structs.asdict(base)
        fields["auth"] = {**base.auth, **plain}
        return cls(**fields, **plain)


class WebhookListItem(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    status: str
    name: str
    description: str | None
    url: str
    auth_type: str
    events: list[str]
    status_at: int | None
    status_reason: str | None
    status_by: str | None
    created_at: int
    updated_at: int | None

    @classmethod
    def of(cls, row: WebhookRow) -> WebhookListItem:
        return cls(
            id=row.id, account_id=row.account_id, status=row.status, name=row.name,
            description=row.description, url=row.url, auth_type=row.auth_type,
            events=ALL_EVENTS if row.events is None else row.events, status_at=row.status_at,
            status_reason=row.status_reason, status_by=row.status_by,
            created_at=row.created_at, updated_at=row.updated_at,
        )  # fmt: skip


class CheckedAuth(msgspec.Struct, frozen=True, kw_only=True):
    type: str | Unset
    signature_secret: str | None
    bearer_token: str | None
    regenerate_signature: bool
    regenerate_bearer: bool

    @property
    def hands_out_secret(self) -> bool:
        """A regeneration (or a caller's new secret): `webhooks:manage` (core-api.md 5.2)."""
        return self.regenerate_signature or self.regenerate_bearer


def checked_url(url: str, policy: UrlPolicy) -> str:
    try:
        return check_url(url, policy)
    except UrlRefused as refused:
        problem = FieldProblem(field="url", code=refused.code, message=refused.message)
        raise InvalidRequest(refused.message, reason=f"webhook.url.{refused.code}",
                             fields=[problem]) from None  # fmt: skip


def _auth(auth: AuthIn, *, creating: bool) -> CheckedAuth:
    if creating and isinstance(auth.type, Unset):
        raise bad("auth.type", "is required (none, bearer, signature or bearer+signature)",
                  "required")  # fmt: skip
    if auth.signature_algorithm not in (None, SIGNATURE_ALGORITHM):
        raise bad("auth.signature_algorithm", f"must be {SIGNATURE_ALGORITHM}")
    if auth.signature_secret is not None and not _SIGNATURE_SECRET.match(auth.signature_secret):
        raise bad("auth.signature_secret", "must be whs_ followed by 32 to 128 base64url "
                  "characters")  # fmt: skip
    if auth.bearer_token is not None and not _BEARER_TOKEN.match(auth.bearer_token):
        raise bad("auth.bearer_token", "must be 16 to 512 characters of a bearer token "
                  "(RFC 6750)")  # fmt: skip
    if creating and (auth.regenerate_secret or auth.regenerate_bearer_token):
        raise bad("auth", "regenerates secrets on update only")
    return CheckedAuth(
        type=auth.type, signature_secret=auth.signature_secret, bearer_token=auth.bearer_token,
        regenerate_signature=auth.regenerate_secret or auth.signature_secret is not None,
        regenerate_bearer=auth.regenerate_bearer_token or auth.bearer_token is not None,
    )  # fmt: skip


def _legacy_auth(data: WebhookCreate) -> AuthIn:
    """`uses_signature` (+ `bearer_token`, `signature_secret`) of the older create body."""
    if data.uses_signature is None:
        raise bad("auth", "is required", "required")
    bearer = data.bearer_token is not None
    kind: AuthType = "bearer" if bearer else "none"
    if data.uses_signature:
        kind = "bearer+signature" if bearer else "signature"
    return AuthIn(type=kind, signature_secret=data.signature_secret,
                  bearer_token=data.bearer_token)  # fmt: skip


def _common(fields: dict[str, Any]) -> dict[str, Any]:
    """events, subjects, retry, circuit_breaker and metadata where given (not UNSET)."""
    out: dict[str, Any] = {}
    checks = {"events": check_events, "subjects": check_subjects, "retry": check_retry,
              "circuit_breaker": check_circuit_breaker}  # fmt: skip
    for name, check in checks.items():
        if name in fields and fields[name] is not UNSET:
            out[name] = check(fields[name])
    if "metadata" in fields and fields["metadata"] is not UNSET:
        check_metadata(fields["metadata"])
        out["metadata"] = fields["metadata"]
    return out


def check_create(data: WebhookCreate, policy: UrlPolicy) -> tuple[dict[str, Any], CheckedAuth]:
    """The command fields of a create body, and its auth."""
    check_storable(msgspec.structs.asdict(data))
    auth = _auth(data.auth if data.auth is not None else _legacy_auth(data), creating=True)
    fields: dict[str, Any] = {
        "name": data.name, "description": data.description, "url": checked_url(data.url, policy),
        "status": data.status, "status_reason": data.status_reason, "status_by": data.status_by,
        "auth_type": auth.type,
        **_common({"events": data.events, "subjects": data.subjects, "retry": data.retry,
                   "circuit_breaker": data.circuit_breaker, "metadata": data.metadata}),
    }  # fmt: skip
    fields["metadata"] = fields.get("metadata") or {}
    return fields, auth


def check_patch(data: WebhookPatch, policy: UrlPolicy) -> tuple[dict[str, Any], CheckedAuth]:
    """The command fields of a PATCH body (only what it sets), and its auth."""
    given = {f: getattr(data, f) for f in data.__struct_fields__}
    given = {k: v for k, v in given.items() if v is not UNSET}
    check_storable(given)
    if "name" in given and given["name"] is None:
        raise bad("name", "must not be null", "required")
    auth = _auth(given.pop("auth", AuthIn()), creating=False)
    patch: dict[str, Any] = {}
    for name in ("name", "description", "status", "status_reason", "status_by"):
        if name in given:
            patch[name] = given[name]
    if "url" in given:
        patch["url"] = checked_url(given["url"], policy)
    patch.update(_common(given))
    if not isinstance(auth.type, Unset):
        patch["auth_type"] = auth.type
    patch["regenerate_signature"] = auth.regenerate_signature
    patch["regenerate_bearer"] = auth.regenerate_bearer
    return patch, auth
