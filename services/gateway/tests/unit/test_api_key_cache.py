"""How the gateway's key cache follows API-key events (pure `evolve_key`, and the cache's own
bookkeeping for deleted keys and keys it does not hold), and how a miss is looked up: once in
the gateway's view, then a bounded wait for a freshly minted key's event."""

from __future__ import annotations

import asyncio
import ipaddress

import msgspec

from authpi.contracts.directory import (
    ApiKeyBlocked,
    ApiKeyCreated,
    ApiKeyDeleted,
    ApiKeyUnblocked,
    ApiKeyUpdated,
)
from authpi.crypto.ids import RandomIds
from authpi.gateway.caches.api_keys import ApiKeyCache, evolve_key, networks
from authpi.messaging.follower import Feed

CREATED = ApiKeyCreated(
    id="key_1",
    account_id="acc_1",
    org_id="org_1",
    issuer_id="i_1",
    name="k",
    scopes=["issuers:read"],
    ip_allowlist=["203.0.113.0/24"],
    secret_sha256="d1",
    secret_hint="h1",
    created_at=1000,
)


def test_created_key_is_active_with_its_restrictions():
    key = evolve_key(None, CREATED, 1)
    assert key.status == "active" and key.scopes == frozenset({"issuers:read"})
    assert key.ip_allowlist == (ipaddress.ip_network("203.0.113.0/24"),)
    assert key.version == 1


def test_status_events_change_the_status():
    key = evolve_key(None, CREATED, 1)
    key = evolve_key(key, ApiKeyBlocked(id="key_1", status_at=2000), 2)
    assert key.status == "blocked"
    key = evolve_key(key, ApiKeyUnblocked(id="key_1", status_at=3000), 3)
    assert key.status == "active"
    revoked = ApiKeyUpdated(id="key_1", changed=["status"], status="revoked", updated_at=4000)
    assert evolve_key(key, revoked, 4).status == "revoked"


def test_replayed_older_events_are_ignored():
    key = evolve_key(None, CREATED, 1)
    key = evolve_key(key, ApiKeyBlocked(id="key_1", status_at=2000), 2)
    assert evolve_key(key, ApiKeyUnblocked(id="key_1", status_at=1500), 2).status == "blocked"
    assert evolve_key(key, CREATED, 1) == key


def test_rotation_keeps_the_previous_digest_until_the_grace_ends():
    key = evolve_key(None, CREATED, 1)
    rotated = ApiKeyUpdated(
        id="key_1",
        changed=["secret"],
        secret_sha256="d2",
        secret_hint="h2",
        previous_valid_until=901_000,
        updated_at=1000,
    )
    key = evolve_key(key, rotated, 2)
    assert (key.secret_sha256, key.previous_sha256, key.previous_valid_until) == (
        "d2",
        "d1",
        901_000,
    )


def test_update_applies_present_fields_and_nullable_ones_named_in_changed():
    key = evolve_key(None, CREATED, 1)
    update = ApiKeyUpdated(
        id="key_1",
        changed=["restrictions", "expires_at"],
        scopes=[],
        ip_allowlist=[],
        expires_at=None,
        updated_at=2000,
    )
    key = evolve_key(key, update, 2)
    assert key.scopes == frozenset() and key.ip_allowlist is None and key.expires_at is None
    expiring = ApiKeyUpdated(id="key_1", changed=["expires_at"], expires_at=9000, updated_at=3000)
    assert evolve_key(key, expiring, 3).expires_at == 9000


def test_an_unparsable_allowlist_entry_matches_nothing():
    assert networks(["not an ip"]) == ()
    assert networks([]) is None


def test_deleted_keys_stay_deleted():
    cache = ApiKeyCache(Feed(None, None, "t", "t_gateway"))
    cache.apply("key_1", CREATED, 1)
    cache.apply("key_1", ApiKeyDeleted(id="key_1", deleted_at=2000), 2)
    assert cache.get("key_1") is None
    cache.apply("key_1", CREATED, 1)  # a late replay does not bring it back
    assert cache.get("key_1") is None


class RacingCache(ApiKeyCache):
    """A cache whose view reads return staged rows, with an event landing during each read."""

    def __init__(self, rows, during_read) -> None:
        super().__init__(Feed(None, None, "t", "t_gateway"))
        self.rows = list(rows)
        self.during_read = list(during_read)

    async def _read_one(self, key_id):
        if self.during_read:
            self.apply(key_id, *self.during_read.pop(0))
        return self.rows.pop(0)


async def test_lookup_rereads_when_a_newer_event_lands_during_the_read():
    active = evolve_key(None, CREATED, 1)
    blocked = evolve_key(active, ApiKeyBlocked(id="key_1", status_at=2000), 2)
    cache = RacingCache([active, blocked], [(ApiKeyBlocked(id="key_1", status_at=2000), 2)])
    found = await cache.lookup("key_1")
    assert found.status == "blocked" and cache.get("key_1").version == 2


async def test_lookup_of_a_key_deleted_during_the_read_finds_nothing():
    active = evolve_key(None, CREATED, 1)
    cache = RacingCache([active], [(ApiKeyDeleted(id="key_1", deleted_at=2000), 2)])
    assert await cache.lookup("key_1") is None
    assert cache.get("key_1") is None


async def test_lookup_never_keeps_a_row_older_than_an_event_it_has_seen():
    active = evolve_key(None, CREATED, 1)
    cache = RacingCache([active, active], [(ApiKeyBlocked(id="key_1", status_at=2000), 2)])
    assert await cache.lookup("key_1") is None  # the view is behind: refused, not cached
    assert cache.get("key_1") is None


async def test_a_fresh_key_missing_everywhere_is_served_once_its_event_arrives():
    key_id = RandomIds().new("key")
    created = msgspec.structs.replace(CREATED, id=key_id)
    cache = RacingCache([None], [])
    lookup = asyncio.create_task(cache.lookup(key_id))
    await asyncio.sleep(0)
    assert not lookup.done()  # waiting for the event
    cache.apply(key_id, created, 1)
    found = await asyncio.wait_for(lookup, 10.0)
    assert found is not None and found.id == key_id


async def test_an_old_or_malformed_unknown_key_is_refused_without_waiting():
    for key_id in ("key_" + "0" * 32, "nonsense"):
        cache = RacingCache([None], [])
        cache._miss_wait = 3600.0  # a wait would outlive the guard below
        assert await asyncio.wait_for(cache.lookup(key_id), 10.0) is None
