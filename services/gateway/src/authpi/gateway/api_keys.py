"""The gateway's in-memory API-key cache (DESIGN.md 5), read on every Core API request.

Start: read the domain-event stream's last sequence, load the directory's `api_keys_view`, then
follow `api-key.*` events from the next sequence with an ordered (ephemeral) JetStream consumer.
Nothing committed in between is missed: an event is in the view or after that sequence, or both.
Events that the view already reflects arrive again and are skipped by stream version.
A key missing from memory is read from the view once before it is refused: a key created a
moment ago (by this or another process) works at once, before its event arrives.

`ApiKeyUpdated` carries only what changed: a field is applied when its value is present;
`description` and `expires_at` (nullable) when named in `changed`; a status with its reason and
actor; a new secret digest moves the current one to `previous_sha256`, which keeps
authenticating until `previous_valid_until` (rotation grace, core-api.md 3.4)."""

from __future__ import annotations

import ipaddress
from typing import Any

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from authpi.contracts.base import Event
from authpi.contracts.catalogue import decode_envelope, decode_event
from authpi.contracts.directory import (
    ApiKeyBlocked,
    ApiKeyCreated,
    ApiKeyDeleted,
    ApiKeyUnblocked,
    ApiKeyUpdated,
)
from authpi.contracts.subjects import events_of_type, events_stream
from authpi.observability import get_logger

log = get_logger("authpi.gateway.api_keys")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class CachedKey(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    org_id: str
    issuer_id: str | None
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


def created(event: ApiKeyCreated, version: int) -> CachedKey:
    return CachedKey(
        id=event.id,
        account_id=event.account_id,
        org_id=event.org_id,
        issuer_id=event.issuer_id,
        status="active",
        scopes=frozenset(event.scopes),
        ip_allowlist=networks(event.ip_allowlist),
        expires_at=event.expires_at,
        secret_sha256=event.secret_sha256,
        version=version,
    )


def evolve_key(key: CachedKey | None, event: Event, version: int) -> CachedKey | None:
    """The cached key after `event` (at stream `version`); replays of older events are no-ops."""
    if key is None:
        return created(event, version) if isinstance(event, ApiKeyCreated) else None
    if version <= key.version:
        return key
    match event:
        case ApiKeyUpdated():
            return _updated(key, event, version)
        case ApiKeyBlocked() | ApiKeyUnblocked():
            return msgspec.structs.replace(key, status=event.status, version=version)
        case ApiKeyDeleted():
            return None
    return msgspec.structs.replace(key, version=version)


def _updated(key: CachedKey, e: ApiKeyUpdated, version: int) -> CachedKey:
    changes: dict[str, Any] = {"version": version}
    if e.status is not None:
        changes["status"] = e.status
    if e.scopes is not None:
        changes["scopes"] = frozenset(e.scopes)
    if e.ip_allowlist is not None:
        changes["ip_allowlist"] = networks(e.ip_allowlist)
    if "expires_at" in e.changed:
        changes["expires_at"] = e.expires_at
    if e.secret_sha256 is not None:
        changes["previous_sha256"] = key.secret_sha256
        changes["previous_valid_until"] = e.previous_valid_until
        changes["secret_sha256"] = e.secret_sha256
    return msgspec.structs.replace(key, **changes)


class ApiKeyCache:
    def __init__(
        self, *, pool: AsyncConnectionPool, js: JetStreamContext, namespace: str, source_schema: str
    ) -> None:
        self._pool = pool
        self._js = js
        self._namespace = namespace
        self._keys: dict[str, CachedKey] = {}
        self._deleted: set[str] = set()
        self._floor: dict[str, int] = {}  # newest version seen for keys not in memory
        self._sub: JetStreamContext.PushSubscription | None = None
        self.last_seq = 0  # last stream sequence applied (observability, tests)
        self._load = sql.SQL(
            "SELECT id, account_id, org_id, issuer_id, status, scopes, ip_allowlist, expires_at,"
            " secret_sha256, previous_sha256, previous_valid_until, version"
            " FROM {}.api_keys_view"
        ).format(sql.Identifier(source_schema))
        self._load_one = sql.SQL("{} WHERE id = %s").format(self._load)

    def get(self, key_id: str) -> CachedKey | None:
        return self._keys.get(key_id)

    async def lookup(self, key_id: str) -> CachedKey | None:
        """The key from memory, else from the view (then kept in memory)."""
        if key_id in self._deleted:
            return None
        if (key := self._keys.get(key_id)) is not None:
            return key
        loaded = await self._read_one(key_id)
        if loaded is not None and loaded.version < self._floor.get(key_id, 0):
            # An event newer than the row arrived while reading: the view has it by now.
            loaded = await self._read_one(key_id)
        if loaded is None or key_id in self._deleted:
            return None
        current = self._keys.get(key_id)
        if current is None or current.version < loaded.version:
            self._keys[key_id] = loaded
            self._floor.pop(key_id, None)
        return self._keys[key_id]

    def apply(self, key_id: str, event: Event, version: int) -> None:
        if key_id in self._deleted:
            return
        current = self._keys.get(key_id)
        key = evolve_key(current, event, version)
        if key is not None:
            self._keys[key_id] = key
            return
        self._keys.pop(key_id, None)
        if isinstance(event, ApiKeyDeleted):
            self._deleted.add(key_id)  # ids are never reused: a tombstone is forever
        elif current is None:
            # Not in memory (a lookup may be reading it right now): remember how far it got.
            self._floor[key_id] = max(self._floor.get(key_id, 0), version)

    async def _read_one(self, key_id: str) -> CachedKey | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(self._load_one, [key_id])
            row = await cur.fetchone()
        return None if row is None else _from_row(row)

    async def start(self) -> None:
        stream = events_stream(self._namespace)
        info = await self._js.stream_info(stream)
        after = info.state.last_seq
        async with self._pool.connection() as conn:
            cur = await conn.execute(self._load)
            rows = await cur.fetchall()
        self._keys = {row[0]: _from_row(row) for row in rows}
        self.last_seq = after
        self._sub = await self._js.subscribe(
            events_of_type("api-key.*", self._namespace),
            stream=stream,
            cb=self._on_message,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            config=ConsumerConfig(opt_start_seq=after + 1),
        )
        log.info("api_keys.loaded", keys=len(self._keys), from_seq=after + 1)

    async def stop(self) -> None:
        if self._sub is not None:
            sub, self._sub = self._sub, None
            await sub.unsubscribe()

    async def _on_message(self, msg: Msg) -> None:
        try:
            env = decode_envelope(msg.data)
            event = decode_event(env.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.error("message.rejected", subject=msg.subject, error=str(exc))
            return
        self.apply(env.stream_id, event, env.stream_version)
        self.last_seq = msg.metadata.sequence.stream


def _from_row(row: tuple[Any, ...]) -> CachedKey:
    return CachedKey(
        id=row[0],
        account_id=row[1],
        org_id=row[2],
        issuer_id=row[3],
        status=row[4],
        scopes=frozenset(row[5]),
        ip_allowlist=networks(row[6]),
        expires_at=row[7],
        secret_sha256=row[8],
        previous_sha256=row[9],
        previous_valid_until=row[10],
        version=row[11],
    )
