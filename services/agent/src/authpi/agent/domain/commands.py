"""Agent commands (internal; never published). The handler decides ids, time and secrets and
passes them in; PATCH fields left out are `UNSET` and are merged in `decide`, against the folded
state."""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from authpi.contracts.agent import VerifierCredential


class CreateAgent(msgspec.Struct, frozen=True, kw_only=True):
    agent_id: str
    issuer_id: str
    now: int
    name: str
    description: str | None = None
    model: str | None = None
    provider: str | None = None
    version: str | None = None
    scopes: list[str] = []
    metadata: dict[str, Any] = {}


class UpdateAgent(msgspec.Struct, frozen=True, kw_only=True):
    agent_id: str
    issuer_id: str
    now: int
    if_match: str | None = None
    name: str | UnsetType = UNSET
    description: str | UnsetType | None = UNSET
    model: str | UnsetType | None = UNSET
    provider: str | UnsetType | None = UNSET
    version: str | UnsetType | None = UNSET
    scopes: list[str] | UnsetType = UNSET
    metadata: dict[str, Any] | UnsetType | None = UNSET
    status: str | UnsetType = UNSET
    status_reason: str | UnsetType | None = UNSET
    status_by: str | UnsetType | None = UNSET


class DeleteAgent(msgspec.Struct, frozen=True, kw_only=True):
    agent_id: str
    issuer_id: str
    now: int
    if_match: str | None = None


class NewVerifier(msgspec.Struct, frozen=True, kw_only=True):
    """A checked verifier: a secret's digest and hint, or a normalised wallet."""

    verifier_id: str
    type: str  # secret | wallet
    name: str | None = None
    description: str | None = None
    credential: VerifierCredential = VerifierCredential()
    secret_sha256: str | None = None
    network: str | None = None
    lookup_address: str | None = None
    proof: str | None = None


class AddVerifier(msgspec.Struct, frozen=True, kw_only=True):
    agent_id: str
    issuer_id: str
    now: int
    verifier: NewVerifier


class RemoveVerifier(msgspec.Struct, frozen=True, kw_only=True):
    agent_id: str
    issuer_id: str
    verifier_id: str
    now: int
    if_match: str | None = None


AgentCommand = CreateAgent | UpdateAgent | DeleteAgent | AddVerifier | RemoveVerifier
