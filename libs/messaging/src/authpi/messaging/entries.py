"""What a service keeps of another service's aggregate (the token service: clients, agents): one
durable projection, `<table>(id, issuer_id, data, version)`, and one in-memory cache per worker,
both driven by the same pure fold `evolve(entry, event, stream_version, account_id)`. The
projection is what a worker loads at start; the cache then follows the stream
(`follower.FollowedCache`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, LiteralString, Protocol, TypeVar

import msgspec
import psycopg

from authpi.contracts.base import Envelope, Event
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent
from authpi.messaging.follower import Feed, FollowedCache


class Entry(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def issuer_id(self) -> str: ...
    @property
    def version(self) -> int: ...


E = TypeVar("E", bound=Entry)
Fold = Callable[[E | None, Event, int, str], E | None]


class EntryProjection(Generic[E]):
    """The durable projection every worker's cache starts from."""

    def __init__(
        self,
        *,
        name: str,
        schema: str,
        table: str,
        event_types: tuple[str, ...],
        entry_type: type[E],
        evolve: Fold[E],
    ) -> None:
        self.name = name
        self.schema = schema
        self.event_types = event_types
        self._evolve = evolve
        self._decode = msgspec.json.Decoder(entry_type).decode
        names = {"schema": schema, "table": table}
        self._get: LiteralString = render(
            "SELECT data FROM {schema}.{table} WHERE id = %s", **names
        )
        self._upsert: LiteralString = render(
            "INSERT INTO {schema}.{table} (id, issuer_id, data, version) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET issuer_id = excluded.issuer_id,"
            " data = excluded.data, version = excluded.version",
            **names,
        )
        self._all: LiteralString = render("SELECT data FROM {schema}.{table}", **names)
        self._reset: LiteralString = render("TRUNCATE {schema}.{table}", **names)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        cur = await conn.execute(self._get, [stored.stream_id])
        row = await cur.fetchone()
        current = None if row is None else self._decode(jsonb.raw(row[0]))
        entry = self._evolve(current, stored.event, stored.stream_version, stored.meta.account_id)
        if entry is not None and entry is not current:
            await conn.execute(
                self._upsert, [entry.id, entry.issuer_id, jsonb.dumps(entry), entry.version]
            )

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)

    async def load(self, conn: psycopg.AsyncConnection[Any]) -> dict[str, E]:
        cur = await conn.execute(self._all)
        rows = await cur.fetchall()
        return {e.id: e for e in (self._decode(jsonb.raw(r[0])) for r in rows)}

    def fold(self, current: E | None, env: Envelope, event: Event) -> E | None:
        return self._evolve(current, event, env.stream_version, env.meta.account_id)


class EntryCache(FollowedCache, Generic[E]):
    """Per process: id -> entry, read on every request; loaded from `projection` with its
    consumer's checkpoint, then following `event_types` (a filter such as `client.>`)."""

    def __init__(self, feed: Feed, projection: EntryProjection[E], event_types: str) -> None:
        """`feed.schema` is the projection's."""
        self._projection = projection
        self._entries: dict[str, E] = {}
        # Moves on every load and applied event: indexes derived from the entries (e.g. the
        # CORS origins of clients) know when to rebuild.
        self.generation = 0
        super().__init__(feed, consumer=projection.name, event_types=event_types)

    def get(self, entry_id: str) -> E | None:
        return self._entries.get(entry_id)

    def entries(self) -> list[E]:
        return list(self._entries.values())

    async def load(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._entries = await self._projection.load(conn)
        self.generation += 1

    def receive(self, env: Envelope, event: Event) -> None:
        entry = self._projection.fold(self._entries.get(env.stream_id), env, event)
        if entry is not None:
            self._entries[env.stream_id] = entry
            self.generation += 1

    def __len__(self) -> int:
        return len(self._entries)
