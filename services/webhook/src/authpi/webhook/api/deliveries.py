"""The delivery log and redelivery (platform.md 7.8, 7.9; contract 4.11, 4.12, 5.12): list one
webhook's deliveries (filters `event_type`, `status`, `after`, `before`), redeliver one delivery
now (the record plus `success`), and requeue failed deliveries in a time window of at most 7 days.

Scopes (core-api.md 5.2): `webhooks:read` for the log; redelivery is `webhooks:manage`
("plus redelivery and secret regeneration")."""

from __future__ import annotations

import msgspec
from litestar import Response, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from authpi.contracts.public import WEBHOOK_EVENT_TYPE_SET
from authpi.errors import FieldProblem, InvalidRequest
from authpi.web.core import provide
from authpi.web.envelopes import One, Page, one
from authpi.web.guards import require_scope
from authpi.web.pagination import InjectedPage, paginate
from authpi.web.params import IfMatch
from authpi.web.text import check_storable
from authpi.webhook.delivery.manual import Deliveries, etag
from authpi.webhook.domain.delivery import STATUSES
from authpi.webhook.queries.deliveries import DeliveryFilters, DeliveryRow

WEBHOOK = "/v1/accounts/{account_id:str}/webhooks/{webhook_id:str}"
DELIVERIES = WEBHOOK + "/deliveries"
REDELIVER_ONE = DELIVERIES + "/{delivery_id:str}/redeliver"
REDELIVER_MANY = WEBHOOK + "/redeliver"
COLLECTION = "deliveries"
TAGS = ["Webhook deliveries"]
READ = [require_scope("webhooks:read")]
MANAGE = [require_scope("webhooks:manage")]
MAX_WINDOW_MS = 7 * 86_400_000


class DeliveryOut(msgspec.Struct, frozen=True, kw_only=True):
    """`WebhookDeliveriesListItem` (contract 5.12)."""

    id: str
    webhook_id: str
    event_id: str
    event_type: str
    status: str
    attempt_count: int
    first_attempted_at: int | None
    last_attempted_at: int | None
    next_attempt_at: int | None
    retry_workflow_id: str | None
    attempt_budget: int | None
    last_error: str | None
    last_response_status: int | None
    created_at: int
    updated_at: int | None

    @classmethod
    def of(cls, row: DeliveryRow) -> DeliveryOut:
        return cls(
            id=row.id,
            webhook_id=row.webhook_id,
            event_id=row.event_id,
            event_type=row.event_type,
            status=row.status,
            attempt_count=row.attempt_count,
            first_attempted_at=row.first_attempted_at,
            last_attempted_at=row.last_attempted_at,
            next_attempt_at=row.next_attempt_at,
            retry_workflow_id=None,
            attempt_budget=row.attempt_budget,
            last_error=row.last_error,
            last_response_status=row.last_response_status,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class RedeliveredOut(DeliveryOut, frozen=True, kw_only=True):
    """`WebhookDeliveriesRedeliverResponse`: the record plus this attempt's `success`."""

    success: bool


class RedeliverBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    # JSON numbers (epoch ms): `int | float` was documented as a `oneOf` every integer matches
    # twice.
    after: float | None = None
    before: float | None = None
    event_types: list[str] | None = None
    status: str | None = None  # only `failed` deliveries are requeued (core-api.md 3.19)


class Requeued(msgspec.Struct, frozen=True):
    requeued: int


def _bad(field: str, code: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        message,
        reason=f"delivery.{field}",
        fields=[FieldProblem(field=field, code=code, message=message)],
    )


def _ms(name: str, value: float | None) -> int | None:
    if value is None:
        return None
    if not 0 <= value < 2**62:
        raise _bad(name, "out_of_range", f"{name} must be a time in epoch milliseconds")
    return int(value)


@get(
    DELIVERIES,
    operation_id="listWebhookDeliveries",
    summary="List Webhook Deliveries",
    tags=TAGS,
    guards=READ,
)
async def list_deliveries(
    account_id: FromPath[str],
    webhook_id: FromPath[str],
    page: InjectedPage,
    deliveries: NamedDependency[Deliveries],
    event_type: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    after: FromQuery[float | None] = None,
    before: FromQuery[float | None] = None,
) -> Page[DeliveryOut]:
    check_storable({"event_type": event_type, "status": status})
    if status is not None and status not in STATUSES:
        raise _bad("status", "invalid_value", f"status must be one of {', '.join(STATUSES)}")
    filters = DeliveryFilters(
        event_type=event_type,
        status=status,
        after=_ms("after", after),
        before=_ms("before", before),
    )
    key = page.after_time_id(COLLECTION)
    async with deliveries.pool.connection() as conn:
        await deliveries.webhook(conn, account_id, webhook_id)
        rows = await deliveries.queries.deliveries(
            conn, account_id, webhook_id, filters, key, page.fetch_limit
        )
    return paginate(
        [DeliveryOut.of(r) for r in rows], page, COLLECTION, lambda d: (d.created_at, d.id)
    )


@post(
    REDELIVER_ONE,
    operation_id="redeliverWebhookDelivery",
    summary="Redeliver a Webhook Delivery",
    tags=TAGS,
    guards=MANAGE,
)
async def redeliver_one(
    account_id: FromPath[str],
    webhook_id: FromPath[str],
    delivery_id: FromPath[str],
    deliveries: NamedDependency[Deliveries],
    if_match: IfMatch = None,
) -> Response[One[RedeliveredOut]]:
    """One immediate attempt; `success` tells how it went (a failed attempt is still a 200)."""
    row, success = await deliveries.redeliver(account_id, webhook_id, delivery_id, if_match)
    out = RedeliveredOut(success=success, **msgspec.structs.asdict(DeliveryOut.of(row)))
    return one(out, etag=etag(row))


@post(
    REDELIVER_MANY,
    operation_id="redeliverWebhookDeliveries",
    summary="Redeliver Failed Webhook Deliveries",
    tags=TAGS,
    guards=MANAGE,
)
async def redeliver_many(
    account_id: FromPath[str],
    webhook_id: FromPath[str],
    data: JSONBody[RedeliverBody],
    deliveries: NamedDependency[Deliveries],
) -> Response[One[Requeued]]:
    """Failed deliveries created in [`after`, `before`) go back to `pending` with a fresh
    budget; the response is `{"data": {"requeued": n}}`, the SDKs' `{"requeued": n}`."""
    check_storable(data)
    after, before = _ms("after", data.after), _ms("before", data.before)
    if after is None:
        raise _bad("after", "required", "after is required")
    if before is None:
        raise _bad("before", "required", "before is required")
    if before <= after:
        raise _bad("before", "invalid_value", "before must be later than after")
    if before - after > MAX_WINDOW_MS:
        raise _bad("before", "out_of_range", "the window from after to before is at most 7 days")
    if data.status is not None and data.status != "failed":
        raise _bad("status", "invalid_value", "only failed deliveries are redelivered in bulk")
    if data.event_types is not None:
        if not data.event_types:
            raise _bad("event_types", "invalid_value", "event_types must not be empty")
        for i, name in enumerate(data.event_types):
            if name not in WEBHOOK_EVENT_TYPE_SET:
                raise _bad(
                    f"event_types[{i}]", "unknown_event_type", f"{name!r} is not an event type"
                )
    count = await deliveries.requeue(account_id, webhook_id, after, before, data.event_types)
    return one(Requeued(requeued=count))


ROUTES = [list_deliveries, redeliver_one, redeliver_many]


def deliveries_router(deliveries: Deliveries) -> Router:
    return Router("/", route_handlers=ROUTES, dependencies={"deliveries": provide(deliveries)})
