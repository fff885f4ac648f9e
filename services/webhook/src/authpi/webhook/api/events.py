"""The Events API (platform.md 8, contract 4.7, 5.13): list, aggregate and get of the account's
audit log. Scope `events:read`. `/events/aggregate` is declared before `/events/{event_id}`.

List order: newest first by default. `order=asc` is the tailing order (commit order, oldest
first): its pages always carry a `next_cursor`, the last one too (`has_more: false`), so a reader
that reached the end keeps that cursor and comes back later for exactly the events that became
visible since, never a gap or a repeat (queries.events explains why). A cursor belongs to one
account and one order: any other is a 400."""

from __future__ import annotations

import math
import time
from typing import Any

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from authpi.contracts.public import WEBHOOK_EVENT_TYPE_SET
from authpi.errors import FieldProblem, InvalidRequest, NotFound
from authpi.web.envelopes import One, Page, one
from authpi.web.guards import require_scope
from authpi.web.pagination import InjectedPage, decode_cursor, encode_cursor
from authpi.web.text import storable
from authpi.webhook.queries import events as q
from authpi.webhook.queries.events import Bucket, EventFilters, EventRow

EVENTS = "/v1/accounts/{account_id:str}/events"
TAGS = ["Events"]
READ = [require_scope("events:read")]
RANGE_CAP_MS = {"hour": 31 * 86_400_000, "day": 366 * 86_400_000}
ORDERS = ("desc", "asc")


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """A public event (platform.md 6.1; the SDK's `Event`)."""

    spec: str
    id: str
    trace: str | None = None
    type: str
    source: str
    trigger: str | None = None
    auth: dict[str, Any] | None = None
    subject: dict[str, str]
    # Integer epoch milliseconds (core-api.md 2.8). `int | float` was documented as a `oneOf`
    # that every integer matches twice, so each response broke its own schema.
    timestamp: int
    data: dict[str, Any]


class EventsAggregate(msgspec.Struct, frozen=True, kw_only=True):
    interval: str | None
    group_by: str | None
    buckets: list[Bucket]


class EventsReader:
    """What the routes need: the pool and the webhook schema."""

    def __init__(self, pool: Any, schema: str) -> None:
        self.pool = pool
        self.schema = schema


# Lax: a stored timestamp written as an integral float (`1.7e12`) still reads as an int.
_event_decoder = msgspec.json.Decoder(Event, strict=False)


def _bad(name: str, code: str, message: str) -> InvalidRequest:
    problem = FieldProblem(field=name, code=code, message=message)
    return InvalidRequest(message, reason=f"events.query.{name}", fields=[problem])


def _choice(name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        raise _bad(name, "invalid_value", f"{name} must be one of {', '.join(allowed)}")
    return value


def _ms(name: str, value: float | None) -> int | None:
    if value is None:
        return None
    if not math.isfinite(value) or abs(value) >= 2**62:
        raise _bad(name, "invalid_value", f"{name} must be a Unix time in milliseconds")
    return math.floor(value)


def _types(event_types: str | None) -> tuple[str, ...]:
    if event_types is None:
        return ()
    names = tuple(dict.fromkeys(t.strip() for t in event_types.split(",") if t.strip()))
    if not names:
        raise _bad("event_types", "invalid_value", "event_types must name at least one type")
    unknown = [t for t in names if t not in WEBHOOK_EVENT_TYPE_SET]
    if unknown:
        raise _bad("event_types", "unknown_event_type", f"unknown event type {unknown[0][:100]!r}")
    return names


def _filters(
    issuer_id: str | None, user_id: str | None, client_id: str | None, agent_id: str | None,
    org_id: str | None, event_types: str | None, after: float | None, before: float | None,
) -> EventFilters:  # fmt: skip
    ids = {"issuer_id": issuer_id, "user_id": user_id, "client_id": client_id,
           "agent_id": agent_id, "org_id": org_id}  # fmt: skip
    for name, value in ids.items():
        if value is not None and (not value or not storable(value) or len(value) > 200):
            raise _bad(name, "invalid_value", f"{name} is not an id")
    return EventFilters(**ids, event_types=_types(event_types), after=_ms("after", after),
                        before=_ms("before", before))  # fmt: skip


def _collection(account_id: str, order: str) -> str:
    return f"events:{order}:{account_id}"


def _cursor(account_id: str, order: str, cursor: str | None) -> tuple[int, int] | None:
    if cursor is None:
        return None
    key = decode_cursor(_collection(account_id, order), cursor)
    if len(key) != 2 or not all(isinstance(v, int) and v >= 0 for v in key):
        raise _bad("cursor", "invalid_value", "cursor is invalid")
    return int(key[0]), int(key[1])


@get(EVENTS, operation_id="listEvents", summary="List Events", tags=TAGS, guards=READ)
async def list_events(
    account_id: FromPath[str],
    page: InjectedPage,
    events_reader: NamedDependency[EventsReader],
    issuer_id: FromQuery[str | None] = None,
    user_id: FromQuery[str | None] = None,
    client_id: FromQuery[str | None] = None,
    agent_id: FromQuery[str | None] = None,
    org_id: FromQuery[str | None] = None,
    event_types: FromQuery[str | None] = None,
    after: FromQuery[float | None] = None,
    before: FromQuery[float | None] = None,
    order: FromQuery[str | None] = None,
) -> Page[Event]:
    """Newest first; `order=asc` tails the log in commit order (see the module docstring)."""
    direction = _choice("order", order, ORDERS) or "desc"
    filters = _filters(issuer_id, user_id, client_id, agent_id, org_id, event_types, after, before)
    cursor = _cursor(account_id, direction, page.cursor)
    async with events_reader.pool.connection() as conn:
        rows = await q.page(
            conn, events_reader.schema, account_id, filters, cursor, page.fetch_limit,
            ascending=direction == "asc",
        )  # fmt: skip
    items = rows[: page.limit]
    has_more = len(rows) > page.limit
    last: EventRow | None = items[-1] if items else None
    collection = _collection(account_id, direction)
    next_cursor: str | None = None
    if last is not None and (has_more or direction == "asc"):
        next_cursor = encode_cursor(collection, (last.tx_id, last.seq))
    elif direction == "asc":
        # Nothing new: the reader keeps its place (or, on a first read, the start).
        next_cursor = page.cursor or encode_cursor(collection, (0, 0))
    data = [_event_decoder.decode(r.event) for r in items]
    return Page(data=data, has_more=has_more, next_cursor=next_cursor)


@get(EVENTS + "/aggregate", operation_id="aggregateEvents", summary="Aggregate Events", tags=TAGS,
     guards=READ)  # fmt: skip
async def aggregate_events(
    account_id: FromPath[str],
    events_reader: NamedDependency[EventsReader],
    issuer_id: FromQuery[str | None] = None,
    user_id: FromQuery[str | None] = None,
    client_id: FromQuery[str | None] = None,
    agent_id: FromQuery[str | None] = None,
    org_id: FromQuery[str | None] = None,
    event_types: FromQuery[str | None] = None,
    after: FromQuery[float | None] = None,
    before: FromQuery[float | None] = None,
    group_by: FromQuery[str | None] = None,
    interval: FromQuery[str | None] = None,
    count_unique: FromQuery[str | None] = None,
) -> Response[One[EventsAggregate]]:
    """Totals, breakdowns (`group_by`) and series (`interval`: hour up to 31 days, day up to
    366 days; without `after`, the range ends at `before` or now and spans that much)."""
    filters = _filters(issuer_id, user_id, client_id, agent_id, org_id, event_types, after, before)
    grouped = _choice("group_by", group_by, q.GROUP_BY)
    every = _choice("interval", interval, tuple(q.INTERVAL_MS))
    unique = _choice("count_unique", count_unique, q.COUNT_UNIQUE)
    if every is not None:
        cap = RANGE_CAP_MS[every]
        end = filters.before if filters.before is not None else int(time.time() * 1000) + 1
        start = filters.after if filters.after is not None else end - cap
        if end - start > cap:
            days = cap // 86_400_000
            raise _bad("after", "out_of_range", f"interval {every} covers at most {days} days")
        filters = msgspec.structs.replace(filters, after=start, before=end)
    async with events_reader.pool.connection() as conn:
        buckets = await q.aggregate(
            conn, events_reader.schema, account_id, filters, group_by=grouped, interval=every,
            count_unique=unique,
        )  # fmt: skip
    return one(EventsAggregate(interval=every, group_by=grouped, buckets=buckets))


@get(EVENTS + "/{event_id:str}", operation_id="getEvent", summary="Get Event", tags=TAGS,
     guards=READ)  # fmt: skip
async def get_event(
    account_id: FromPath[str],
    event_id: FromPath[str],
    events_reader: NamedDependency[EventsReader],
) -> Response[One[Event]]:
    found = None
    if event_id.startswith("evt_") and len(event_id) <= 64 and storable(event_id):
        async with events_reader.pool.connection() as conn:
            found = await q.one(conn, events_reader.schema, account_id, event_id)
    if found is None:
        raise NotFound("event not found", reason="events.not_found")
    return one(_event_decoder.decode(found))


ROUTES = [list_events, aggregate_events, get_event]
