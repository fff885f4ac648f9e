"""Builders of the agent service's test data: events and commands of the Agent decider, token
facts, and wallet verifier request bodies. Each takes overrides for what a test cares about."""

from __future__ import annotations

from typing import Any

from authpi.agent.domain.commands import (
    AddVerifier,
    CreateAgent,
    DeleteAgent,
    NewVerifier,
    RemoveVerifier,
    UpdateAgent,
)
from authpi.contracts.agent import (
    AgentCreated,
    AgentDeleted,
    AgentDescriptor,
    AgentUpdated,
    AgentVerifierAdded,
    AgentVerifierRemoved,
)
from authpi.contracts.facts import MachineTokenIssued

AGT, ISS, T0 = "agt_" + "a" * 32, "i_" + "b" * 25, 1_781_222_400_000
DESCRIPTOR = AgentDescriptor(model="m")  # what agent_created() describes
# An EVM address in its EIP-55 display form, and a Solana one.
BASE = "0x857b06519E91e3A54538791bDbb0E22373e36b66"
SOLANA = "7EcDhSYGxXyscszYEp35KHN8vvw3svAuLKTzXwCFLtV"


def agent_created(**overrides: Any) -> AgentCreated:
    fields: dict[str, Any] = {
        "id": AGT, "issuer_id": ISS, "name": "bot", "model": "m", "scopes": ["a"],
        "created_at": T0, **overrides,
    }  # fmt: skip
    return AgentCreated(**fields)


def agent_updated(changed: list[str], at: int, **overrides: Any) -> AgentUpdated:
    """An update of agent_created(): its fields unless overridden."""
    fields: dict[str, Any] = {
        "id": AGT, "issuer_id": ISS, "name": "bot", "model": "m", "scopes": ["a"],
        "changed": changed, "updated_at": at, **overrides,
    }  # fmt: skip
    return AgentUpdated(**fields)


def agent_deleted(at: int, **overrides: Any) -> AgentDeleted:
    fields: dict[str, Any] = {"id": AGT, "issuer_id": ISS, "name": "bot", "deleted_at": at,
                              **overrides}  # fmt: skip
    return AgentDeleted(**fields)


def verifier_added(
    n: int, kind: str = "secret", address: str | None = None, **overrides: Any
) -> AgentVerifierAdded:
    """Verifier `avf_<n>`, added at T0 + n."""
    fields: dict[str, Any] = {
        "agent_id": AGT, "issuer_id": ISS, "verifier_id": f"avf_{n}", "verifier_type": kind,
        "secret_sha256": "d" * 64 if kind == "secret" else None,
        "network": "eip155:1" if kind == "wallet" else None, "lookup_address": address,
        "created_at": T0 + n, **overrides,
    }  # fmt: skip
    return AgentVerifierAdded(**fields)


def verifier_removed(n: int, at: int, **overrides: Any) -> AgentVerifierRemoved:
    fields: dict[str, Any] = {"agent_id": AGT, "issuer_id": ISS, "verifier_id": f"avf_{n}",
                              "verifier_type": "secret", "removed_at": at,
                              **overrides}  # fmt: skip
    return AgentVerifierRemoved(**fields)


def create_agent(**overrides: Any) -> CreateAgent:
    fields: dict[str, Any] = {"agent_id": AGT, "issuer_id": ISS, "now": T0, "name": "bot",
                              **overrides}  # fmt: skip
    return CreateAgent(**fields)


def update_agent(at: int, **patch: Any) -> UpdateAgent:
    return UpdateAgent(agent_id=AGT, issuer_id=patch.pop("issuer_id", ISS), now=at, **patch)


def delete_agent(at: int, **overrides: Any) -> DeleteAgent:
    return DeleteAgent(agent_id=AGT, issuer_id=ISS, now=at, **overrides)


def add_verifier(n: int, kind: str = "secret", address: str | None = None) -> AddVerifier:
    """Adds the verifier verifier_added(n, kind, address) describes, at T0 + n."""
    new = NewVerifier(
        verifier_id=f"avf_{n}", type=kind,
        secret_sha256="d" * 64 if kind == "secret" else None,
        network="eip155:1" if kind == "wallet" else None, lookup_address=address,
    )  # fmt: skip
    return AddVerifier(agent_id=AGT, issuer_id=ISS, now=T0 + n, verifier=new)


def remove_verifier(n: int, at: int) -> RemoveVerifier:
    return RemoveVerifier(agent_id=AGT, issuer_id=ISS, verifier_id=f"avf_{n}", now=at)


def token_issued(
    agent_id: str | None, verifier_id: str | None, at: int, **overrides: Any
) -> MachineTokenIssued:
    """A `machine.token.issued` fact; an agent's when `agent_id` is set."""
    fields: dict[str, Any] = {
        "account_id": "acc_x", "issuer_id": "i_x", "client_id": agent_id or "c_x",
        "agent_id": agent_id, "verifier_id": verifier_id, "scope": "", "aud": "a", "jti": "j",
        "issued_at": at, "expires_at": at + 1, **overrides,
    }  # fmt: skip
    return MachineTokenIssued(**fields)


def wallet(address: str = BASE, network: str = "eip155:8453", **extra: str) -> dict[str, Any]:
    """The body of a wallet verifier request; `extra` goes into its credential."""
    return {
        "type": "wallet",
        "name": "treasury",
        "credential": {"network": network, "address": address, **extra},
    }
