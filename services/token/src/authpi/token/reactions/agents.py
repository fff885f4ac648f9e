"""What the token endpoint knows of an agent (platform.md 3, idp-api.md 5.5), learnt from the
agent service's agent.* events only: issuer, account, status, scopes and the SHA-256 digests of
its secret verifiers. Verifier events live in the agent's own stream, so one stream version
orders everything about an agent.

As for clients, `evolve` is the one fold: the durable projection token-agents stores it, and
every worker's agent cache applies it to the events it follows after loading that projection."""

from __future__ import annotations

import msgspec

from authpi.contracts.agent import (
    AgentCreated,
    AgentDeleted,
    AgentUpdated,
    AgentVerifierAdded,
    AgentVerifierRemoved,
)
from authpi.contracts.base import Event
from authpi.messaging.entries import EntryProjection

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


AGENTS_EVENT_TYPES = (
    "agent.created",
    "agent.updated",
    "agent.deleted",
    "agent.verifier.added",
    "agent.verifier.removed",
)


def agents_projection(schema: str) -> EntryProjection[AgentEntry]:
    """token-agents: the durable projection every worker's agent cache starts from."""
    return EntryProjection(
        name="token-agents", schema=schema, table="agents_view", event_types=AGENTS_EVENT_TYPES,
        entry_type=AgentEntry, evolve=evolve,
    )  # fmt: skip
