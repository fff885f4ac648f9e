"""agents_view and agent_verifiers_view: the inline projection of the agent streams (same
transaction as the events). Deleting an agent removes its rows, its verifiers' usage counters
and its open wallet challenges; verifiers keep digests only, never secrets."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.contracts.agent import (
    AgentCreated,
    AgentDeleted,
    AgentUpdated,
    AgentVerifierAdded,
    AgentVerifierRemoved,
)
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent


class AgentsView:
    name = "agent-agents"
    event_types = (
        "agent.created",
        "agent.updated",
        "agent.deleted",
        "agent.verifier.added",
        "agent.verifier.removed",
    )

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._insert = render(
            "INSERT INTO {schema}.agents_view (id, account_id, issuer_id, name, description, model,"
            " provider, version, status, status_reason, status_by, scopes, metadata,"
            " stream_version, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s::jsonb, %s::jsonb, %s, %s) ON CONFLICT (id) DO NOTHING",
            schema=schema,
        )
        self._update = render(
            "UPDATE {schema}.agents_view SET name = %s, description = %s, model = %s,"
            " provider = %s, version = %s, status = %s, status_at = %s, status_reason = %s,"
            " status_by = %s,"
            " scopes = %s::jsonb, metadata = %s::jsonb, stream_version = %s, updated_at = %s"
            " WHERE id = %s",
            schema=schema,
        )
        self._delete = render("DELETE FROM {schema}.agents_view WHERE id = %s", schema=schema)
        self._add_verifier = render(
            "INSERT INTO {schema}.agent_verifiers_view (id, agent_id, issuer_id, type, status,"
            " name, description, credential, secret_sha256, network, lookup_address, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s)"
            " ON CONFLICT (id) DO NOTHING",
            schema=schema,
        )
        self._add_usage = render(
            "INSERT INTO {schema}.verifier_usage (verifier_id, agent_id) VALUES (%s, %s)"
            " ON CONFLICT (verifier_id) DO NOTHING",
            schema=schema,
        )
        self._remove_verifier = render(
            "DELETE FROM {schema}.agent_verifiers_view WHERE id = %s", schema=schema
        )
        self._remove_usage = render(
            "DELETE FROM {schema}.verifier_usage WHERE verifier_id = %s", schema=schema
        )
        self._drop_verifiers = render(
            "DELETE FROM {schema}.agent_verifiers_view WHERE agent_id = %s", schema=schema
        )
        self._drop_usage = render(
            "DELETE FROM {schema}.verifier_usage WHERE agent_id = %s", schema=schema
        )
        self._drop_challenges = render(
            "DELETE FROM {schema}.wallet_challenges WHERE agent_id = %s", schema=schema
        )
        self._reset = render(
            "TRUNCATE {schema}.agents_view, {schema}.agent_verifiers_view", schema=schema
        )

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case AgentCreated() as e:
                await conn.execute(self._insert, [
                    e.id, stored.meta.account_id, e.issuer_id, e.name, e.description, e.model,
                    e.provider, e.version, e.status, e.status_reason, e.status_by,
                    jsonb.dumps(e.scopes), jsonb.dumps(e.metadata), stored.stream_version,
                    e.created_at])  # fmt: skip
            case AgentUpdated() as e:
                await conn.execute(self._update, [
                    e.name, e.description, e.model, e.provider, e.version, e.status,
                    e.status_at, e.status_reason, e.status_by, jsonb.dumps(e.scopes),
                    jsonb.dumps(e.metadata), stored.stream_version, e.updated_at,
                    e.id])  # fmt: skip
            case AgentDeleted() as e:
                for statement in (self._delete, self._drop_verifiers, self._drop_usage,
                                  self._drop_challenges):  # fmt: skip
                    await conn.execute(statement, [e.id])
            case AgentVerifierAdded() as e:
                await conn.execute(self._add_verifier, [
                    e.verifier_id, e.agent_id, e.issuer_id, e.verifier_type, e.status, e.name,
                    e.description, jsonb.dumps(e.credential), e.secret_sha256, e.network,
                    e.lookup_address, e.created_at])  # fmt: skip
                await conn.execute(self._add_usage, [e.verifier_id, e.agent_id])
            case AgentVerifierRemoved() as e:
                await conn.execute(self._remove_verifier, [e.verifier_id])
                await conn.execute(self._remove_usage, [e.verifier_id])

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)
