"""agent-issuers: the issuers the agent service knows, learnt from the directory's issuer.*
events into its own issuers_view (it never reads the directory's tables), with the issuer's
`agents.wallet_proof` setting. A deleted issuer stays as a `deleted` row, so that it answers 404
at once, and is queued in issuer_cascades: the cascade task (handlers.agents) then deletes its
agents, each with its own `agent.deleted` (core-api.md 3.7: delete cascades to agents)."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.contracts.directory import IssuerCreated, IssuerDeleted, IssuerUpdated
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent


def cascade_channel(schema: str) -> str:
    return f"{schema}_issuer_cascade"


def wallet_proof_setting(settings: dict[str, Any]) -> str | None:
    """The issuer's `agents.wallet_proof` (platform.md 4.3 rule 4). Issuer settings are
    `{portals, branding, access, security}` (core-api.md 3.7), so it is read from
    `settings.security.agents` and, should the settings gain an `agents` section, from there."""
    for section in (settings.get("agents"), (settings.get("security") or {}).get("agents")):
        if isinstance(section, dict) and isinstance(section.get("wallet_proof"), str):
            return str(section["wallet_proof"])
    return None


class IssuersReaction:
    name = "agent-issuers"
    event_types = ("issuer.created", "issuer.updated", "issuer.deleted")

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.channel = cascade_channel(schema)
        self._upsert = render(
            "INSERT INTO {schema}.issuers_view (id, account_id, status, wallet_proof, updated_at)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET"
            " status = excluded.status, wallet_proof = excluded.wallet_proof,"
            " updated_at = excluded.updated_at WHERE {schema}.issuers_view.status <> 'deleted'",
            schema=schema,
        )
        self._deleted = render(
            "INSERT INTO {schema}.issuers_view (id, account_id, status, updated_at)"
            " VALUES (%s, %s, 'deleted', %s) ON CONFLICT (id) DO UPDATE SET status = 'deleted',"
            " updated_at = excluded.updated_at",
            schema=schema,
        )
        self._queue = render(
            "INSERT INTO {schema}.issuer_cascades (issuer_id, account_id, requested_at)"
            " VALUES (%s, %s, %s) ON CONFLICT (issuer_id) DO NOTHING",
            schema=schema,
        )
        self._reset = render("TRUNCATE {schema}.issuers_view", schema=schema)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case IssuerCreated() | IssuerUpdated() as e:
                proof = wallet_proof_setting(e.settings)
                await conn.execute(
                    self._upsert, [e.id, e.account_id, e.status, proof, stored.recorded_at]
                )
            case IssuerDeleted() as e:
                await conn.execute(self._deleted, [e.id, e.account_id, stored.recorded_at])
                await conn.execute(self._queue, [e.id, e.account_id, stored.recorded_at])
                await conn.execute("SELECT pg_notify(%s, %s)", [self.channel, e.id])
            case _:
                return

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)
