"""The Agent aggregate (platform.md 3): a non-human identity of one issuer, with its scopes, its
status (`active`, `suspended`, `blocked`; every change is `agent.updated`) and its verifiers.
The verifiers live in the agent's stream: the agent is the consistency boundary of the limit of
20 (platform.md 3.3). Delete is hard: afterwards the id names nothing (404)."""

from __future__ import annotations

from typing import Any, assert_never

import msgspec

from authpi.agent.domain.commands import (
    AddVerifier,
    AgentCommand,
    CreateAgent,
    DeleteAgent,
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
    VerifierCredential,
)
from authpi.contracts.base import Event
from authpi.errors import Conflict, FieldProblem, InvalidRequest, NotFound
from authpi.web.etag import check_if_match, etag_of, strictly_after
from authpi.web.metadata import merge_metadata

MAX_VERIFIERS = 20
STATUSES = ("active", "suspended", "blocked")
_FIELDS = ("name", "description", "model", "provider", "version", "scopes", "metadata",
           "status", "status_reason", "status_by")  # fmt: skip


class Verifier(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str
    status: str
    name: str | None
    description: str | None
    credential: VerifierCredential
    secret_sha256: str | None
    network: str | None
    lookup_address: str | None
    created_at: int

    @property
    def etag(self) -> str:
        return etag_of(self.created_at, None)


class Absent(msgspec.Struct, frozen=True):
    pass


class Live(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    issuer_id: str
    name: str
    description: str | None
    model: str | None
    provider: str | None
    version: str | None
    status: str
    status_reason: str | None
    status_by: str | None
    scopes: list[str]
    metadata: dict[str, Any]
    created_at: int
    status_at: int | None = None
    updated_at: int | None = None
    verifiers: tuple[Verifier, ...] = ()

    @property
    def etag(self) -> str:
        return etag_of(self.created_at, self.updated_at)

    @property
    def descriptor(self) -> AgentDescriptor:
        return AgentDescriptor(model=self.model, provider=self.provider, version=self.version)

    def changed_at(self, now: int) -> int:
        return strictly_after(now, self.updated_at or self.created_at)


class Deleted(msgspec.Struct, frozen=True):
    id: str
    issuer_id: str


Agent = Absent | Live | Deleted
INITIAL: Agent = Absent()
# What an existing agent accepts: every command but CreateAgent.
LiveCommand = UpdateAgent | DeleteAgent | AddVerifier | RemoveVerifier


def decide(cmd: AgentCommand, state: Agent) -> list[Event]:
    match cmd, state:
        case CreateAgent(), Absent():
            return [_created(cmd)]
        case CreateAgent(), _:
            raise Conflict("the agent already exists", reason="agent.exists")
        case _, Live() if state.issuer_id == cmd.issuer_id:
            return _on_live(cmd, state)
        case _:
            raise NotFound("no such agent", reason="agent.not_found")


def _on_live(cmd: LiveCommand, agent: Live) -> list[Event]:
    match cmd:
        case UpdateAgent():
            check_if_match(cmd.if_match, agent.etag)
            return _updated(cmd, agent)
        case DeleteAgent():
            check_if_match(cmd.if_match, agent.etag)
            return [AgentDeleted(
                id=agent.id, issuer_id=agent.issuer_id, name=agent.name,
                agent=agent.descriptor, verifier_ids=[v.id for v in agent.verifiers],
                deleted_at=agent.changed_at(cmd.now))]  # fmt: skip
        case AddVerifier():
            return [_verifier_added(cmd, agent)]
        case RemoveVerifier():
            return [_verifier_removed(cmd, agent)]
        case _:
            assert_never(cmd)


def _created(cmd: CreateAgent) -> AgentCreated:
    return AgentCreated(
        id=cmd.agent_id, issuer_id=cmd.issuer_id, name=cmd.name, description=cmd.description,
        model=cmd.model, provider=cmd.provider, version=cmd.version, scopes=cmd.scopes,
        metadata=cmd.metadata, created_at=cmd.now,
    )  # fmt: skip


def _updated(cmd: UpdateAgent, agent: Live) -> list[Event]:
    before: dict[str, Any] = {f: getattr(agent, f) for f in _FIELDS}
    after = dict(before)
    for field in _FIELDS:
        value = getattr(cmd, field)
        if value is not msgspec.UNSET and field != "metadata":
            after[field] = value
    after["metadata"] = merge_metadata(agent.metadata, cmd.metadata)
    if after["status"] != agent.status:
        # A new status does not inherit the reason or author of the previous one.
        for field in ("status_reason", "status_by"):
            if getattr(cmd, field) is msgspec.UNSET:
                after[field] = None
    changed = [f for f in _FIELDS if after[f] != before[f]]
    if not changed:
        return []
    at = agent.changed_at(cmd.now)
    status_at = at if "status" in changed else agent.status_at
    return [AgentUpdated(id=agent.id, issuer_id=agent.issuer_id, changed=changed,
                         status_at=status_at, updated_at=at, **after)]  # fmt: skip


def _verifier_added(cmd: AddVerifier, agent: Live) -> AgentVerifierAdded:
    new = cmd.verifier
    if len(agent.verifiers) >= MAX_VERIFIERS:
        problem = FieldProblem(
            field="verifiers", code="limit_exceeded",
            message=f"an agent holds at most {MAX_VERIFIERS} verifiers",
        )  # fmt: skip
        raise InvalidRequest(problem.message, reason="agent.verifier_limit", fields=[problem])
    for held in agent.verifiers:
        if held.id == new.verifier_id:
            raise Conflict("the verifier already exists", reason="agent.verifier_exists")
        if new.type == "wallet" and (held.network, held.lookup_address) == (
            new.network, new.lookup_address,
        ):  # fmt: skip
            raise Conflict(
                "this wallet is already a verifier of the agent", reason="agent.wallet_taken"
            )
    return AgentVerifierAdded(
        agent_id=agent.id, issuer_id=agent.issuer_id, verifier_id=new.verifier_id,
        verifier_type=new.type, name=new.name, description=new.description,
        credential=new.credential, secret_sha256=new.secret_sha256, network=new.network,
        lookup_address=new.lookup_address, proof=new.proof, agent=agent.descriptor,
        created_at=cmd.now,
    )  # fmt: skip


def _verifier_removed(cmd: RemoveVerifier, agent: Live) -> AgentVerifierRemoved:
    held = next((v for v in agent.verifiers if v.id == cmd.verifier_id), None)
    if held is None:
        raise NotFound("no such verifier", reason="agent.verifier_not_found")
    check_if_match(cmd.if_match, held.etag)
    return AgentVerifierRemoved(
        agent_id=agent.id, issuer_id=agent.issuer_id, verifier_id=held.id,
        verifier_type=held.type, network=held.network, lookup_address=held.lookup_address,
        agent=agent.descriptor, removed_at=max(cmd.now, held.created_at),
    )  # fmt: skip


def evolve(state: Agent, event: Event) -> Agent:
    match state, event:
        case Absent(), AgentCreated():
            return Live(
                id=event.id, issuer_id=event.issuer_id, name=event.name,
                description=event.description, model=event.model, provider=event.provider,
                version=event.version, status=event.status, status_reason=event.status_reason,
                status_by=event.status_by, scopes=event.scopes, metadata=event.metadata,
                created_at=event.created_at,
            )  # fmt: skip
        case Live(), AgentUpdated():
            return msgspec.structs.replace(
                state, **{f: getattr(event, f) for f in _FIELDS},
                status_at=event.status_at, updated_at=event.updated_at,
            )  # fmt: skip
        case Live(), AgentVerifierAdded():
            return msgspec.structs.replace(state, verifiers=(*state.verifiers, _verifier(event)))
        case Live(), AgentVerifierRemoved():
            kept = tuple(v for v in state.verifiers if v.id != event.verifier_id)
            return msgspec.structs.replace(state, verifiers=kept)
        case Live(), AgentDeleted():
            return Deleted(state.id, state.issuer_id)
        case _:
            return state


def _verifier(event: AgentVerifierAdded) -> Verifier:
    return Verifier(
        id=event.verifier_id, type=event.verifier_type, status=event.status, name=event.name,
        description=event.description, credential=event.credential,
        secret_sha256=event.secret_sha256, network=event.network,
        lookup_address=event.lookup_address, created_at=event.created_at,
    )  # fmt: skip
