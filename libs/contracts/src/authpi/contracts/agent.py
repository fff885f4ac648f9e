"""Events owned by the agent service (platform.md 3, 6.3): the Agent aggregate and its verifiers.

They carry what the token service's agent cache needs without calling the agent service: agent
id, issuer, status, scopes and descriptors on agent.*; for a `secret` verifier the SHA-256 digest
of the secret (never the secret itself: webhook rendering strips the digest); for a `wallet`
verifier its CAIP-2 network and the lookup form of its address. The account is in the metadata.
Status changes are `agent.updated` with `status` in `changed` (the catalogue has no
agent.suspended)."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.contracts.base import Event


class AgentDescriptor(msgspec.Struct, frozen=True, kw_only=True):
    """Which AI system acts as the agent (platform.md 3.7: `data.agent` of agent.* events)."""

    model: str | None = None
    provider: str | None = None
    version: str | None = None


class AgentSnapshot(Event, frozen=True, kw_only=True):
    """The agent's public fields, as created or after an update."""

    id: str
    issuer_id: str
    name: str
    description: str | None = None
    model: str | None = None
    provider: str | None = None
    version: str | None = None
    status: str = "active"  # active | suspended | blocked
    status_reason: str | None = None
    status_by: str | None = None
    scopes: list[str] = []
    metadata: dict[str, Any] = {}


class AgentCreated(AgentSnapshot, frozen=True, kw_only=True, tag="agent.created"):
    created_at: int


class AgentUpdated(AgentSnapshot, frozen=True, kw_only=True, tag="agent.updated"):
    """`status_at` moves only when `status` is in `changed`."""

    changed: list[str]
    status_at: int | None = None
    updated_at: int


class AgentDeleted(Event, frozen=True, kw_only=True, tag="agent.deleted"):
    """Hard delete: the agent's verifiers go with it (their ids are listed) and its wallet
    addresses are free again (platform.md 3.6)."""

    id: str
    issuer_id: str
    name: str
    agent: AgentDescriptor = AgentDescriptor()
    verifier_ids: list[str] = []
    deleted_at: int


class VerifierCredential(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The public part of a verifier, as the Core API shows it (platform.md 3.3)."""

    algorithm: str | None = None  # secret: "sha256"
    hint: str | None = None  # secret: its last 4 characters
    network: str | None = None  # wallet: CAIP-2 chain id
    address: str | None = None  # wallet: display form (EIP-55 checksummed for eip155)
    account_id: str | None = None  # wallet: CAIP-10 of the display form


class AgentVerifierAdded(Event, frozen=True, kw_only=True, tag="agent.verifier.added"):
    agent_id: str
    issuer_id: str
    verifier_id: str
    verifier_type: str  # secret | wallet
    status: str = "active"
    name: str | None = None
    description: str | None = None
    credential: VerifierCredential = VerifierCredential()
    # secret: SHA-256 hex digest of the whole secret as presented (`agts_…`), what the token
    # endpoint compares against (in constant time).
    secret_sha256: str | None = None
    # wallet: CAIP-2 network and the lookup form of the address (lowercase for eip155, exact
    # otherwise); (issuer, network, lookup address) names at most one active verifier.
    network: str | None = None
    lookup_address: str | None = None
    proof: str | None = None  # "eip191" when control of the wallet was proven at registration
    agent: AgentDescriptor = AgentDescriptor()
    created_at: int


class AgentVerifierRemoved(Event, frozen=True, kw_only=True, tag="agent.verifier.removed"):
    """The credential stops working at once (platform.md 3.6)."""

    agent_id: str
    issuer_id: str
    verifier_id: str
    verifier_type: str
    network: str | None = None
    lookup_address: str | None = None
    agent: AgentDescriptor = AgentDescriptor()
    removed_at: int


AgentEvent = AgentCreated | AgentUpdated | AgentDeleted | AgentVerifierAdded | AgentVerifierRemoved
