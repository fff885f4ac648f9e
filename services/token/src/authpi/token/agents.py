"""What the token endpoint knows of an agent (platform.md 3, idp-api.md 5.5), learnt from the
agent service's agent.* events only: issuer, account, status, scopes and the SHA-256 digests of
its secret verifiers. Verifier events live in the agent's own stream, so one stream version
orders everything about an agent.

As for clients, `evolve` is the one fold: the durable projection token-agents stores it, and
every worker's AgentCache applies it to the events it follows after loading that projection."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
from psycopg import sql

from authpi.contracts.agent import (
    AgentCreated,
    AgentDeleted,
    AgentUpdated,
    AgentVerifierAdded,
    AgentVerifierRemoved,
)
from authpi.contracts.base import Envelope, Event
from authpi.eventstore.store import StoredEvent

AGENT_EVENTS = "agent.>"
AGENT_TOKEN_TTL = 300  # fixed (idp-api.md 2.3, 11.7)


class AgentEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    issuer_id: str
    account_id: str
    status: str  # active | suspended | blocked | deleted
    scopes: tuple[str, ...]
    secrets: dict[str, str] = {}  # verifier id -> SHA-256 hex digest (secret verifiers only)
    version: int


def evolve(
    entry: AgentEntry | None, event: Event, version: int, account_id: str
) -> AgentEntry | None:
    if entry is not None and version <= entry.version:
        return entry
    match event:
        case AgentCreated() as e:
            return AgentEntry(
                id=e.id,
                issuer_id=e.issuer_id,
                account_id=account_id,
                status=e.status,
                scopes=tuple(e.scopes),
                version=version,
            )
    if entry is None:
        return None
    match event:
        case AgentUpdated() as e:
            return msgspec.structs.replace(
                entry, status=e.status, scopes=tuple(e.scopes), version=version
            )
        case AgentVerifierAdded() as e:
            secrets = dict(entry.secrets)
            if e.verifier_type == "secret" and e.secret_sha256 and e.status == "active":
                secrets[e.verifier_id] = e.secret_sha256
            return msgspec.structs.replace(entry, secrets=secrets, version=version)
        case AgentVerifierRemoved() as e:
            secrets = {k: v for k, v in entry.secrets.items() if k != e.verifier_id}
            return msgspec.structs.replace(entry, secrets=secrets, version=version)
        case AgentDeleted():
            # A tombstone: a late replay of an older event cannot bring the agent back.
            return msgspec.structs.replace(entry, status="deleted", secrets={}, version=version)
    return msgspec.structs.replace(entry, version=version)


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(AgentEntry).decode


def _raw(value: Any) -> bytes:
    return value if isinstance(value, bytes) else _encode(value)


class AgentsProjection:
    """token-agents: the durable projection every worker's agent cache starts from."""

    name = "token-agents"
    event_types = (
        "agent.created",
        "agent.updated",
        "agent.deleted",
        "agent.verifier.added",
        "agent.verifier.removed",
    )

    def __init__(self, schema: str) -> None:
        self.schema = schema
        q = sql.Identifier(schema)

        def render(text: str) -> str:
            return sql.SQL(text).format(q).as_string()

        self._get = render("SELECT data FROM {}.agents_view WHERE id = %s")
        self._upsert = render(
            "INSERT INTO {}.agents_view (id, issuer_id, data, version) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET data = excluded.data, version = excluded.version"
        )
        self._all = render("SELECT data FROM {}.agents_view")
        self._reset = render("TRUNCATE {}.agents_view")

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        cur = await conn.execute(self._get, [stored.stream_id])
        row = await cur.fetchone()
        current = None if row is None else _decode(_raw(row[0]))
        entry = evolve(current, stored.event, stored.stream_version, stored.meta.account_id)
        if entry is not None and entry is not current:
            await conn.execute(
                self._upsert, [entry.id, entry.issuer_id, _encode(entry).decode(), entry.version]
            )

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)

    async def load_into(self, conn: psycopg.AsyncConnection[Any], cache: AgentCache) -> None:
        cur = await conn.execute(self._all)
        cache.replace({e.id: e for e in (_decode(_raw(r[0])) for r in await cur.fetchall())})


class AgentCache:
    def __init__(self) -> None:
        self._agents: dict[str, AgentEntry] = {}

    def get(self, agent_id: str) -> AgentEntry | None:
        return self._agents.get(agent_id)

    def replace(self, agents: dict[str, AgentEntry]) -> None:
        self._agents = agents

    def apply(self, env: Envelope, event: Event) -> None:
        current = self._agents.get(env.stream_id)
        entry = evolve(current, event, env.stream_version, env.meta.account_id)
        if entry is not None:
            self._agents[env.stream_id] = entry

    def __len__(self) -> int:
        return len(self._agents)
