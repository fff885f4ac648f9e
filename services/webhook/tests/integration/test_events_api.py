"""The Events API (platform.md 8) over the audit log: domain events reach it through the audit
consumer; filters; newest-first paging and tailing (`order=asc`) with concurrent writes and a
transaction that commits late, never a gap or a repeat; aggregate; 400s; account isolation; the
`events:read` scope."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import uuid
from typing import Any

import httpx
import pytest
from authpi_admin import AuthPIAdmin
from authpi_admin.errors import ForbiddenError, NotFoundError, ValidationError
from psycopg import sql

from authpi.contracts.public import PublicEvent, public_event_id
from authpi.crypto.clock import FixedClock
from authpi.eventstore.sqltext import render
from authpi.platform.testing import tenants
from authpi.platform.testing.tenants import ADMIN, basic, key_ready, part
from authpi.testing.plugin import eventually
from authpi.webhook.audit_retention import DAY_MS, AuditRetention
from authpi.webhook.queries import events as q
from authpi.webhook.queries.events import EventFilters
from authpi.webhook.reactions.audit import INSERT_IN_ORDER, rows_json

T0 = 1_700_000_000_000
HOUR = 3_600_000


class Tenant:
    def __init__(self, platform, account_id: str, key: tuple[str, str]) -> None:
        self.platform = platform
        self.account_id = account_id
        self.key = key

    def sdk(self, key: tuple[str, str] | None = None) -> AuthPIAdmin:
        return AuthPIAdmin(api_key=key or self.key, account_id=self.account_id,
                           base_url=self.platform.api_url, retries=False)  # fmt: skip

    def http(self, key: tuple[str, str] | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.platform.api_url, headers=basic(*(key or self.key)),
                                 timeout=30)  # fmt: skip

    @property
    def path(self) -> str:
        return f"/v1/accounts/{self.account_id}/events"


async def new_tenant(platform) -> Tenant:
    account_id, key = await tenants.new_account(platform, "events tenant")
    return Tenant(platform, account_id, key)


@pytest.fixture
async def tenant(platform) -> Tenant:
    return await new_tenant(platform)


def fake(account_id: str, event_type: str, at: int, **subject: str) -> PublicEvent:
    """A public event as the audit consumer would store it."""
    return PublicEvent(
        id=public_event_id(uuid.uuid4()), type=event_type, trigger="api",
        auth={"type": "system"}, subject={"account_id": account_id, **subject}, timestamp=at,
        data={"n": at},
    )  # fmt: skip


def _insert_sql(platform):
    return render(INSERT_IN_ORDER, schema=f"{platform.namespace}_webhook")


async def insert(platform, pool, events: list[PublicEvent]) -> None:
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(_insert_sql(platform), [rows_json(events)])


async def list_page(http: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    response = await http.get(path, params={k: v for k, v in params.items() if v is not None})
    assert response.status_code == 200, response.text
    return response.json()


async def read_all(http, path: str, **params: Any) -> tuple[list[str], str | None]:
    """Every page until has_more is false: (event ids in order, the last next_cursor)."""
    ids: list[str] = []
    cursor = params.pop("cursor", None)
    while True:
        body = await list_page(http, path, cursor=cursor, **params)
        ids += [e["id"] for e in body["data"]]
        if not body["has_more"]:
            return ids, body["next_cursor"]
        cursor = body["next_cursor"]


async def test_domain_events_reach_the_events_api(tenant):
    issuer = await tenant.sdk().issuers.create({"name": f"ev-{uuid.uuid4().hex[:6]}"})

    async def listed():
        page = await tenant.sdk().events.list(issuer_id=issuer.id, event_types="issuer.created")
        return page.data

    [event] = await eventually(listed)
    assert event.type == "issuer.created" and event.id.startswith("evt_")
    assert event.subject["account_id"] == tenant.account_id
    assert event.subject["issuer_id"] == issuer.id
    assert event.trigger == "api" and event.auth["type"] == "api_key"
    assert event.data["id"] == issuer.id and event.source == "com.authpi/v1"
    got = await tenant.sdk().events.get(event.id)
    assert got.id == event.id and got.data == event.data


async def test_user_created_carries_no_sealed_pii(tenant):
    issuer = await tenant.sdk().issuers.create({"name": f"ev-{uuid.uuid4().hex[:6]}"})
    user = (
        await tenant.sdk()
        .issuer(issuer.id)
        .users.create(
            {"username": f"u{uuid.uuid4().hex[:6]}@example.test", "username_type": "email"}
        )
    )

    async def listed():
        return (await tenant.sdk().events.list(user_id=user.id, event_types="user.created")).data

    [event] = await eventually(listed)
    raw = json.dumps(event.model_dump())
    assert "pii" not in event.data and "username_hash" not in event.data
    assert "@example.test" not in raw
    assert event.subject["user_id"] == user.id


async def test_filters_select_matching_events(tenant, platform, pool):
    a = tenant.account_id
    rows = [
        fake(a, "user.created", T0, issuer_id="i_1", user_id="usr_1"),
        fake(a, "user.updated", T0 + 1, issuer_id="i_1", user_id="usr_2"),
        fake(a, "client.created", T0 + 2, issuer_id="i_2", client_id="cli_1"),
        fake(a, "agent.created", T0 + 3, issuer_id="i_2", agent_id="agt_1"),
        fake(a, "organization.created", T0 + 4, issuer_id="i_2", org_id="org_1"),
    ]
    await insert(platform, pool, rows)
    ids = [e.id for e in rows]
    async with tenant.http() as http:
        cases = {
            "issuer_id=i_1": ({"issuer_id": "i_1"}, [ids[1], ids[0]]),
            "user_id": ({"user_id": "usr_2"}, [ids[1]]),
            "client_id": ({"client_id": "cli_1"}, [ids[2]]),
            "agent_id": ({"agent_id": "agt_1"}, [ids[3]]),
            "org_id": ({"org_id": "org_1"}, [ids[4]]),
            "types": ({"event_types": "user.created,agent.created"}, [ids[3], ids[0]]),
            "window": ({"after": T0 + 1, "before": T0 + 3}, [ids[2], ids[1]]),
            "types+issuer": (
                {"event_types": "client.created,user.created", "issuer_id": "i_2"},
                [ids[2]],
            ),
        }
        for name, (params, expected) in cases.items():
            got, _ = await read_all(
                http, tenant.path, **{"after": T0 - 10, "before": T0 + 9, **params}
            )
            assert got == expected, name


async def test_newest_first_paging_has_no_gap_or_repeat_under_writes(tenant, platform, pool):
    a = tenant.account_id
    first = [fake(a, "user.updated", T0 + i, user_id=f"usr_{i % 7}") for i in range(240)]
    await insert(platform, pool, first)
    stop = asyncio.Event()

    async def writer() -> None:
        i = 0
        while not stop.is_set():
            await insert(platform, pool, [fake(a, "user.updated", T0 + 10_000 + i)])
            i += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(writer())
    try:
        async with tenant.http() as http:
            ids, last = await read_all(http, tenant.path, limit=17, after=T0 - 1)
    finally:
        stop.set()
        await task
    assert len(ids) == len(set(ids))
    assert [e.id for e in reversed(first)] == [i for i in ids if i in {e.id for e in first}]
    assert last is None


async def test_tailing_resumes_exactly_after_a_late_commit(tenant, platform, pool):
    a = tenant.account_id
    before = [fake(a, "session.created", T0 + i) for i in range(30)]
    await insert(platform, pool, before)
    async with tenant.http() as http:
        window = {"after": T0 - 1, "before": T0 + 1000}  # this test's rows only
        ids, cursor = await read_all(http, tenant.path, order="asc", limit=7, **window)
        assert ids == [e.id for e in before] and cursor is not None
        # A transaction that writes first and commits last (its rows get a lower seq).
        late = [fake(a, "session.expired", T0 + 100)]
        async with pool.connection() as held:
            await held.execute("BEGIN")
            await held.execute(_insert_sql(platform), [rows_json(late)])
            early = [fake(a, "session.updated", T0 + 200 + i) for i in range(5)]
            await insert(platform, pool, early)
            held_back = await list_page(http, tenant.path, order="asc", cursor=cursor, **window)
            assert held_back["data"] == [] and held_back["next_cursor"] == cursor
            await held.execute("COMMIT")

        async def everything():
            got, last = await read_all(
                http, tenant.path, order="asc", cursor=cursor, limit=4, **window
            )
            return (got, last) if len(got) == 6 else None

        got, resumed = await eventually(everything)
        assert got == [late[0].id, *(e.id for e in early)]
        again = await list_page(http, tenant.path, order="asc", cursor=resumed, **window)
        assert again["data"] == [] and again["has_more"] is False
        assert again["next_cursor"] == resumed


async def test_tailing_from_an_empty_log_keeps_a_cursor(platform):
    empty = await new_tenant(platform)
    async with empty.http() as http:
        body = await list_page(http, empty.path, order="asc", before=T0)
        assert body["data"] == [] and body["next_cursor"]
        body2 = await list_page(
            http, empty.path, order="asc", before=T0, cursor=body["next_cursor"]
        )
        assert body2["next_cursor"] == body["next_cursor"]


async def test_aggregate_counts_groups_and_series(tenant, platform, pool):
    a = tenant.account_id
    base = T0 - T0 % HOUR
    rows = [
        fake(a, "user.verification.succeeded", base + 1, user_id="usr_1"),
        fake(a, "user.verification.succeeded", base + 2, user_id="usr_1"),
        fake(a, "user.verification.succeeded", base + HOUR + 5, user_id="usr_2"),
        fake(a, "user.verification.failed", base + HOUR + 6, user_id="usr_3"),
    ]
    await insert(platform, pool, rows)
    sdk = tenant.sdk()
    window = {"after": base, "before": base + 2 * HOUR}
    total = await sdk.events.aggregate(**window)
    assert total.interval is None and total.group_by is None
    assert [b["count"] for b in total.buckets] == [4]
    by_type = await sdk.events.aggregate(group_by="type", count_unique="user_id", **window)
    assert {(b["key"], b["count"], b["unique"]) for b in by_type.buckets} == {
        ("user.verification.succeeded", 3, 2), ("user.verification.failed", 1, 1),
    }  # fmt: skip
    series = await sdk.events.aggregate(
        interval="hour", event_types="user.verification.succeeded", **window
    )
    assert [(b["start"], b["count"]) for b in series.buckets] == [(base, 2), (base + HOUR, 1)]
    with pytest.raises(ValidationError):
        await sdk.events.aggregate(interval="hour", after=base, before=base + 32 * 24 * HOUR)
    with pytest.raises(ValidationError):
        await sdk.events.aggregate(group_by="pii")


def _cursor(collection: str, *key: Any) -> str:
    raw = json.dumps([collection, *key]).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def test_bad_queries_are_400(tenant, platform, pool):
    other = await new_tenant(platform)
    async with tenant.http() as http, other.http() as other_http:
        await insert(
            platform, pool, [fake(other.account_id, "user.created", T0 + i) for i in range(3)]
        )
        foreign = (await list_page(other_http, other.path, limit=1))["next_cursor"]
        desc_cursor = _cursor(f"events:desc:{tenant.account_id}", 5, 1)
        bad = [
            {"cursor": "not-a-cursor"}, {"cursor": foreign},
            {"cursor": desc_cursor, "order": "asc"},
            {"cursor": _cursor(f"events:desc:{tenant.account_id}", "x", 1)},
            {"limit": 0}, {"limit": 101}, {"event_types": "user.nope"}, {"order": "sideways"},
            {"after": "soon"}, {"user_id": ""},
        ]  # fmt: skip
        for params in bad:
            response = await http.get(tenant.path, params=params)
            assert response.status_code == 400, (params, response.text)
            body = response.json()
            assert body["error"] == "invalid_request" and body["fields"], params


async def test_accounts_see_only_their_own_events(tenant, platform, pool):
    other = await new_tenant(platform)
    mine = fake(tenant.account_id, "user.created", T0, user_id="usr_shared")
    theirs = fake(other.account_id, "user.created", T0, user_id="usr_shared")
    await insert(platform, pool, [mine, theirs])
    async with tenant.http() as http:
        got, _ = await read_all(http, tenant.path, user_id="usr_shared")
    assert got == [mine.id]
    with pytest.raises(NotFoundError):
        await tenant.sdk().events.get(theirs.id)
    with pytest.raises(ForbiddenError):
        await AuthPIAdmin(api_key=tenant.key, account_id=other.account_id,
                          base_url=platform.api_url, retries=False).events.list()  # fmt: skip


async def test_events_read_scope_is_required(tenant, platform):
    directory = part(platform, "directory")
    key = await directory.create_api_key(tenant.account_id, "no-events", ["issuers:read"],
                                         actor=ADMIN)  # fmt: skip
    await key_ready(platform, key.key_id, key.secret)
    sdk = tenant.sdk((key.key_id, key.secret))
    for call in (sdk.events.list(), sdk.events.aggregate(), sdk.events.get("evt_x")):
        with pytest.raises(ForbiddenError) as caught:
            await call
        assert caught.value.error == "insufficient_scope"


async def test_window_pages_are_the_same_on_both_paths(tenant, platform, pool, monkeypatch):
    """A time window is paged either by walking the commit order or by taking the window by time
    and sorting it (queries.events.page): the same rows in the same order, cursor by cursor, in
    both directions, though `occurred_at` runs against the commit order here."""
    a = tenant.account_id
    rng = random.Random(3)
    batches = [[fake(a, rng.choice(("user.created", "user.updated")), T0 + rng.randrange(100),
                     issuer_id=rng.choice(("i_a", "i_b"))) for _ in range(7)]
               for _ in range(6)]  # fmt: skip
    for batch in batches:  # one transaction each: commit order is batch order
        await insert(platform, pool, batch)
    committed = [e for batch in batches for e in batch]
    schema = f"{platform.namespace}_webhook"
    windows = [
        EventFilters(after=T0 + 20, before=T0 + 70),
        EventFilters(after=T0 + 10, before=T0 + 90, issuer_id="i_a"),
        EventFilters(before=T0 + 50, event_types=("user.updated",)),
        EventFilters(after=T0 + 40, before=T0 + 1_000),  # this test's rows only
    ]
    for filters in windows:
        for ascending in (False, True):
            expected = [
                e.id for e in (committed if ascending else committed[::-1])
                if (filters.after is None or e.timestamp >= filters.after)
                and (filters.before is None or e.timestamp < filters.before)
                and filters.issuer_id in (None, e.subject.get("issuer_id"))
                and (not filters.event_types or e.type in filters.event_types)
            ]  # fmt: skip
            for by_time in (False, True):  # the walk, the window path
                gate = sql.SQL("WITH gate AS (SELECT {} AS by_time) ").format(by_time)
                monkeypatch.setattr(q, "_gate", lambda *_, gate=gate: (gate, []))
                got: list[str] = []
                cursor: tuple[int, int] | None = None
                while True:
                    async with pool.connection() as conn:
                        rows = await q.page(
                            conn, schema, a, filters, cursor, 5, ascending=ascending
                        )
                    got += [json.loads(r.event)["id"] for r in rows]
                    if len(rows) < 5:
                        break
                    cursor = (rows[-1].tx_id, rows[-1].seq)
                assert got == expected, (filters, ascending, by_time)


async def test_the_retention_sweep_deletes_exactly_the_rows_older_than_the_cutoff(
    tenant, platform, pool
):
    """Retention (platform.md 8): every row older than the cutoff goes, in batches, and none
    newer. The sweep's index on `occurred_at` is a BRIN index (migration 0008); which plan the
    sweep takes depends on the table's statistics, so only the index itself is checked."""
    a = tenant.account_id
    old = 900_000_000_000  # before any other row of the log
    events = [fake(a, "user.updated", old + i * 1_000, user_id=f"usr_{i}") for i in range(3_000)]
    for k in range(0, len(events), 500):
        await insert(platform, pool, events[k : k + 500])
    schema = f"{platform.namespace}_webhook"
    cutoff = old + 2_000 * 1_000
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam"
            " WHERE c.oid = %s::regclass",
            [f'"{schema}".audit_events_occurred'],
        )
        assert await cur.fetchone() == ("brin",)
    retention = AuditRetention(pool, schema, FixedClock(cutoff + 90 * DAY_MS), 90)
    assert await retention.sweep_once() == 2_000
    async with pool.connection() as conn:
        cur = await conn.execute(
            sql.SQL(
                "SELECT count(*), min(occurred_at) FROM {} WHERE account_id = %s"
                " AND occurred_at < %s"
            ).format(sql.Identifier(schema, "audit_events")),
            [a, old + len(events) * 1_000],
        )
        assert await cur.fetchone() == (1_000, cutoff)
    assert await retention.sweep_once() == 0
