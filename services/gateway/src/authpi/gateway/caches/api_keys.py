"""The gateway's in-memory API-key cache (DESIGN.md 5), read on every Core API request.

Load: the gateway's own api_keys_view (fed by its `gateway-directory` projection consumer) with
that consumer's checkpoint, in one snapshot; then follow `api-key.*` events from the checkpoint's
next stream sequence with an ordered (ephemeral) JetStream consumer (`FollowedCache`). Every
event is in the loaded rows or delivered afterwards: the consumer writes rows and checkpoint in
one transaction. The cache is warm once it has caught up; a worker serves no traffic before.
It never reads the directory's tables (DESIGN.md 2).

A key missing from memory is read from the gateway's view once (one indexed lookup). If it is
absent there too and its id was minted a moment ago, the request waits, bounded (`MISS_WAIT_S`,
and at most `MAX_WAITING` requests at a time), for its event to arrive: a key created a moment
ago works before its event has reached this process. Unknown, malformed or old ids are refused
without waiting.

Events change a key by the one fold of the api-key events (`api_key_state` in the catalogue),
which the directory's decider and views and the gateway's own view use too."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

import msgspec
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from authpi.contracts.base import Envelope, Event
from authpi.contracts.directory import ApiKeyDeleted, api_key_state
from authpi.gateway.caches.arrivals import Arrivals
from authpi.gateway.reactions.directory import CONSUMER
from authpi.messaging.follower import Feed, FollowedCache
from authpi.observability import get_logger

log = get_logger("authpi.gateway.api_keys")

# How long a request for an unknown, freshly minted key waits for its event: the directory's relay
# publishes at once on NOTIFY, but an event committed while another transaction holds the
# snapshot xmin back waits for the relay's next poll (1 s), hence a little more than that.
MISS_WAIT_S = 2.0
MAX_WAITING = 512  # requests waiting at once; beyond, a miss is refused at once

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class CachedKey(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    org_id: str
    issuer_id: str | None
    name: str
    created_at: int
    status: str
    scopes: frozenset[str]
    # None: any source IP. Otherwise only these networks (an unparsable entry matches nothing).
    ip_allowlist: tuple[Network, ...] | None
    expires_at: int | None
    secret_sha256: str
    previous_sha256: str | None = None
    previous_valid_until: int | None = None
    version: int


def networks(entries: list[str]) -> tuple[Network, ...] | None:
    if not entries:
        return None
    parsed: list[Network] = []
    for entry in entries:
        try:
            parsed.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            log.warning("api_key.allowlist_entry_ignored", entry=entry)
    return tuple(parsed)


# How this cache holds the fields it keeps of `api_key_state.ApiKeyState`.
CACHED = {"scopes": frozenset, "ip_allowlist": networks}


def evolve_key(key: CachedKey | None, event: Event, version: int) -> CachedKey | None:
    """The cached key after `event` (at stream `version`), by the one fold of the api-key events
    (`api_key_state`); replays of older events are no-ops."""
    return api_key_state.evolve(key, event, version, into=CachedKey, convert=CACHED)


class ApiKeyCache(FollowedCache):
    def __init__(
        self,
        feed: Feed,
        *,
        consumer: str = CONSUMER,
        miss_wait: float = MISS_WAIT_S,
        arrivals: Arrivals | None = None,
    ) -> None:
        self._pool = feed.pool
        self._keys: dict[str, CachedKey] = {}
        self._deleted: set[str] = set()
        self._floor: dict[str, int] = {}  # newest version seen for keys not in memory
        self._miss_wait = miss_wait
        self._arrivals = arrivals or Arrivals("key", limit=MAX_WAITING)
        self._load = sql.SQL("SELECT {} FROM {}.api_keys_view").format(
            sql.SQL(", ").join(map(sql.Identifier, CachedKey.__struct_fields__)),
            sql.Identifier(feed.schema),
        )
        self._load_one = sql.SQL("{} WHERE id = %s").format(self._load)
        super().__init__(feed, consumer=consumer, event_types="api-key.*")

    def get(self, key_id: str) -> CachedKey | None:
        return self._keys.get(key_id)

    async def lookup(self, key_id: str) -> CachedKey | None:
        """The key from memory, else from the gateway's view (then kept in memory), else the
        key once its event arrives, if it may be in flight (bounded wait)."""
        if key_id in self._deleted:
            return None
        if (key := self._keys.get(key_id)) is not None:
            return key
        if not key_id.isprintable() or len(key_id) > 64:
            return None  # never a stored id; PostgreSQL refuses NUL in text anyway
        loaded = await self._read_one(key_id)
        if loaded is not None and loaded.version < self._floor.get(key_id, 0):
            # This cache has seen a newer event than the row: read once more, and never keep a
            # row older than what was seen (the projection catches up; a later request reads).
            loaded = await self._read_one(key_id)
            if loaded is not None and loaded.version < self._floor.get(key_id, 0):
                return None
        if key_id in self._deleted:
            return None
        if loaded is not None:
            current = self._keys.get(key_id)
            if current is None or current.version < loaded.version:
                self._keys[key_id] = loaded
                self._floor.pop(key_id, None)
            return self._keys[key_id]
        await self._arrivals.wait(key_id, self._miss_wait, lambda: key_id in self._keys)
        return self._keys.get(key_id)

    def apply(self, key_id: str, event: Event, version: int) -> None:
        if key_id in self._deleted:
            return
        current = self._keys.get(key_id)
        key = evolve_key(current, event, version)
        if key is not None:
            self._keys[key_id] = key
            if current is None:
                self._arrivals.arrived(key_id)
            return
        self._keys.pop(key_id, None)
        if isinstance(event, ApiKeyDeleted):
            self._deleted.add(key_id)  # ids are never reused: a tombstone is forever
        elif current is None:
            # Not in memory (a lookup may be reading it right now): remember how far it got.
            self._floor[key_id] = max(self._floor.get(key_id, 0), version)

    async def _read_one(self, key_id: str) -> CachedKey | None:
        assert self._pool is not None
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            row = await (await cur.execute(self._load_one, [key_id])).fetchone()
        return None if row is None else from_row(row)

    def receive(self, env: Envelope, event: Event) -> None:
        self.apply(env.stream_id, event, env.stream_version)

    async def load(self, conn: psycopg.AsyncConnection[Any]) -> None:
        cur = await conn.cursor(row_factory=dict_row).execute(self._load)
        rows = await cur.fetchall()
        self._keys = {r["id"]: from_row(r) for r in rows if r["id"] not in self._deleted}
        self._floor.clear()
        self._arrivals.recheck()
        log.info("api_keys.loaded", keys=len(self._keys))


def from_row(row: Mapping[str, Any]) -> CachedKey:
    """A key from its api_keys_view row (by column name)."""
    return api_key_state.shaped(CachedKey, row, CACHED)
