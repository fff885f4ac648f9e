"""The idempotency-key store on the real database with a fixed clock: 24-hour expiry and the
lease that frees a key whose first attempt never finished (core-api.md 2.4); a deleted user's
replays are purged (DESIGN.md 7)."""

from __future__ import annotations

import uuid

from authpi.contracts.base import Meta
from authpi.contracts.directory import UserDeleted
from authpi.crypto.clock import FixedClock
from authpi.eventstore.store import StoredEvent
from authpi.gateway.edge.idempotency import (
    TTL_MS,
    Claimed,
    IdempotencyStore,
    InProgress,
    Stored,
    resource_of,
)
from authpi.gateway.reactions.directory import DirectoryReaction


def store_for(platform, pool, clock: FixedClock) -> IdempotencyStore:
    return IdempotencyStore(pool, f"{platform.namespace}_gateway", clock, platform.handle.rt.kek)


async def test_idempotency_keys_expire_after_24_hours(platform, pool):
    clock = FixedClock()
    store = store_for(platform, pool, clock)
    claim = await store.claim("acc_expiry", "api_key:k", "k1", "fp")
    assert isinstance(claim, Claimed)
    await store.complete(
        "acc_expiry", "api_key:k", "k1", claim.owner, Stored(201, [], b'{"data": {}}')
    )
    clock.advance(ms=TTL_MS - 1)
    replay = await store.claim("acc_expiry", "api_key:k", "k1", "fp")
    assert isinstance(replay, Stored) and replay.body == b'{"data": {}}'
    clock.advance(ms=1)
    assert isinstance(await store.claim("acc_expiry", "api_key:k", "k1", "other fp"), Claimed)
    assert await store.sweep() == 0  # the row was taken over, not left expired


async def test_an_abandoned_in_progress_key_is_taken_over_after_its_lease(platform, pool):
    clock = FixedClock()
    store = store_for(platform, pool, clock)
    assert isinstance(await store.claim("acc_lease", "api_key:k", "k1", "fp"), Claimed)
    assert isinstance(await store.claim("acc_lease", "api_key:k", "k1", "fp"), InProgress)
    clock.advance(seconds=301)
    assert isinstance(await store.claim("acc_lease", "api_key:k", "k1", "fp"), Claimed)


async def test_a_deleted_users_replays_are_purged_and_no_one_elses(platform, pool):
    """gateway-directory applies `user.deleted` by purging the records about that user."""
    store = store_for(platform, pool, FixedClock())
    scope = f"acc_shred_{uuid.uuid4().hex[:8]}"
    records = {"create": "usr_gone", "update": "usr_gone", "other": "usr_kept"}
    for key, user_id in records.items():
        claim = await store.claim(scope, "api_key:k", key, "fp")
        body = b'{"data": {"id": "%s", "username": "gone@example.com"}}' % user_id.encode()
        await store.complete(scope, "api_key:k", key, claim.owner, Stored(201, [], body), user_id)
    assert [k for k, _ in await store.replay_bodies(scope)] == ["create", "other", "update"]

    reaction = DirectoryReaction(f"{platform.namespace}_gateway")
    deleted = StoredEvent(
        position=1, tx_id=1, event_id=str(uuid.uuid4()), stream_id="usr_gone", stream_version=3,
        type="user.deleted", schema_version=1, event=UserDeleted(id="usr_gone", deleted_at=1),
        meta=Meta(account_id=scope), recorded_at=1,
    )  # fmt: skip
    async with pool.connection() as conn, conn.transaction():
        await reaction.apply(conn, deleted)
    assert [k for k, _ in await store.replay_bodies(scope)] == ["other"]


def test_a_replay_is_about_the_paths_user_else_the_bodys_object():
    assert resource_of({"user_id": "usr_1"}, b'{"data": {"id": "ptk_1"}}') == "usr_1"
    created = b'{"data": {"id": "usr_2", "profile": {"x": [1]}}}'
    assert resource_of({"account_id": "acc_1"}, created) == "usr_2"
    assert resource_of({}, b'{"id": "wh_3", "url": "https://example.com"}') == "wh_3"
    listed = b'{"data": [{"id": "usr_4"}], "has_more": false, "next_cursor": null}'
    for body in (b"", b"[1, 2]", b'{"id": 7}', b"not json", b'{"data": {}}', listed):
        assert resource_of({}, body) is None
