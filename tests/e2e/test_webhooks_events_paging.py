"""The Events API pages through 10,000 events with no gap and no repeat while writes continue
(platform.md 8): the events are users created through the directory's write path, many at a time
(each is one `user.created` committed in its store and carried to the audit log), and a writer
keeps creating more through the Core API while a reader pages through them with the official SDK.

Newest first, a page walk that starts while writes go on sees one contiguous run of the final
listing that reaches back to the oldest event. Oldest first (`order=asc`, the tailing order), a
reader that reaches the end and comes back later with its last cursor gets exactly the events
written since: never a gap, never a repeat."""

from __future__ import annotations

import asyncio
import contextlib

import httpx

from authpi.platform.testing.webhooks import create_users, new_issuer, store_users
from authpi.testing.plugin import eventually

EVENTS = 10_000


async def _count(admin, issuer: str) -> int:
    agg = await admin.events.aggregate(issuer_id=issuer, event_types="user.created")
    return sum(int(b["count"]) for b in agg.buckets)


async def _newest_first(admin, issuer: str) -> dict[str, str]:
    """Every event id, newest first, with the user it is about (dicts keep insertion order)."""
    found: dict[str, str] = {}
    listed = admin.events.list_all(issuer_id=issuer, event_types="user.created", limit=100)
    async for e in listed:
        assert e.id not in found, f"{e.id} listed twice"
        found[e.id] = e.subject["user_id"]
    return found


async def _ascending(http: httpx.AsyncClient, path: str, issuer: str, cursor: str | None):
    """Oldest first from `cursor` to the current end: (ids, the cursor to resume from)."""
    ids: list[str] = []
    while True:
        params = {"issuer_id": issuer, "event_types": "user.created", "limit": 100, "order": "asc"}
        if cursor is not None:
            params["cursor"] = cursor
        resp = await http.get(path, params=params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        ids.extend(e["id"] for e in body["data"])
        if body.get("next_cursor"):
            cursor = body["next_cursor"]
        if not body["has_more"]:
            return ids, cursor


async def test_paging_ten_thousand_events_while_writes_continue(admin, hooks_platform):
    p = hooks_platform
    issuer = await new_issuer(admin, "paging")
    preloaded = await store_users(hooks_platform, issuer, EVENTS)
    await eventually(lambda: _at_least(admin, issuer, EVENTS), timeout=120, interval=0.5)

    stop = asyncio.Event()
    written: list[str] = []

    async def writer() -> None:
        while not stop.is_set():
            written.extend(await create_users(admin, issuer, 4, concurrency=4, prefix="late"))

    path = f"/v1/accounts/{p.account_id}/events"
    async with httpx.AsyncClient(
        base_url=p.api_url, auth=(p.api_key_id, p.api_key_secret), timeout=30
    ) as http:
        task = asyncio.create_task(writer())
        try:
            await eventually(lambda: _some(written), timeout=30)
            walked = await _newest_first(admin, issuer)  # while the writer writes
            tail, cursor = await _ascending(http, path, issuer, None)
            more = len(written) + 20
            await eventually(lambda: _some(written, more), timeout=30)
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        total = EVENTS + len(written)
        await eventually(lambda: _at_least(admin, issuer, total), timeout=60, interval=0.5)
        rest, _ = await _ascending(http, path, issuer, cursor)

    # Oldest first: what came before the resume point and what came after it are the whole log
    # (as many events as were written, the aggregate agrees), each event exactly once.
    assert len(rest) > 0
    final = list(reversed(tail + rest))  # newest first
    assert len(final) == len(set(final)) == total
    # Newest first: one contiguous run of the whole log, down to the oldest event, holding every
    # event that existed before the walk began.
    ids = list(walked)
    assert len(ids) >= EVENTS and set(walked.values()) >= preloaded
    start = final.index(ids[0])
    assert final[start:] == ids


async def _at_least(admin, issuer: str, n: int) -> bool:
    return await _count(admin, issuer) >= n


async def _some(items: list[str], n: int = 1) -> bool:
    return len(items) >= n
