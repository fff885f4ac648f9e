"""Read-side SQL over agents, their verifiers and usage, wallet challenges and the agents'
organization memberships (the agent service's own tables). Agent lists are newest first by
(created_at, id); filters are bound parameters of constant statements (a null filter selects
everything). Every agent query is scoped by account and issuer, so an id of another tenant
names nothing."""

from __future__ import annotations

from typing import Any, LiteralString

import msgspec
import psycopg
from psycopg.rows import class_row

from authpi.eventstore.sqltext import render
from authpi.web.pagination import SortKey, time_id_key


class AgentFields(msgspec.Struct, kw_only=True):
    """The fields of an agent that the API shows, in its order (api/models.py `AgentOut`)."""

    id: str
    issuer_id: str
    name: str
    description: str | None
    model: str | None
    provider: str | None
    version: str | None
    status: str
    status_at: int | None
    status_reason: str | None
    status_by: str | None
    scopes: list[str]
    verifiers: list[str]  # the configured verifier types (platform.md 3.2)
    metadata: dict[str, Any]
    created_at: int
    updated_at: int | None


class AgentRow(AgentFields, kw_only=True):
    account_id: str


class VerifierRow(msgspec.Struct, kw_only=True):
    id: str
    agent_id: str
    type: str
    status: str
    name: str | None
    description: str | None
    credential: dict[str, Any]
    usage_count: int
    last_used_at: int | None
    created_at: int
    updated_at: int | None


class MembershipRow(msgspec.Struct, kw_only=True):
    org_id: str
    member_id: str
    member_type: str = "agent"  # not a column: every member this service knows is an agent
    issuer_id: str
    status: str
    status_reason: str | None
    status_by: str | None
    scopes: list[str]
    groups: list[str]
    user_title: str | None
    metadata: dict[str, Any]
    joined_at: int
    updated_at: int | None
    organization_status: str


class AgentFilters(msgspec.Struct, frozen=True, kw_only=True):
    status: str | None = None
    model: str | None = None
    provider: str | None = None
    has_verifiers: bool | None = None
    # A wallet (platform.md 4.4): its CAIP-2 network and the lookup form of its address.
    network: str | None = None
    lookup_address: str | None = None


_AGENTS = """
SELECT a.id, a.account_id, a.issuer_id, a.name, a.description, a.model, a.provider, a.version,
  a.status, a.status_at, a.status_reason, a.status_by, a.scopes, a.metadata, a.created_at,
  a.updated_at,
  coalesce((SELECT jsonb_agg(DISTINCT v.type ORDER BY v.type) FROM {schema}.agent_verifiers_view v
            WHERE v.agent_id = a.id), '[]'::jsonb) AS verifiers
FROM {schema}.agents_view a
WHERE a.account_id = %(account_id)s AND a.issuer_id = %(issuer_id)s
  AND (%(agent_id)s::text IS NULL OR a.id = %(agent_id)s)
  AND (%(status)s::text IS NULL OR a.status = %(status)s)
  AND (%(model)s::text IS NULL OR a.model = %(model)s)
  AND (%(provider)s::text IS NULL OR a.provider = %(provider)s)
  AND (%(has_verifiers)s::boolean IS NULL OR %(has_verifiers)s = EXISTS (
       SELECT 1 FROM {schema}.agent_verifiers_view v WHERE v.agent_id = a.id))
  AND (%(network)s::text IS NULL OR EXISTS (
       SELECT 1 FROM {schema}.agent_verifiers_view v
       WHERE v.agent_id = a.id AND v.issuer_id = a.issuer_id AND v.type = 'wallet'
         AND v.status = 'active' AND v.network = %(network)s
         AND v.lookup_address = %(lookup_address)s))
  AND (%(after_at)s::bigint IS NULL OR (a.created_at, a.id) < (%(after_at)s, %(after_id)s))
ORDER BY a.created_at DESC, a.id DESC
LIMIT %(limit)s
"""

_VERIFIERS = """
SELECT v.id, v.agent_id, v.type, v.status, v.name, v.description, v.credential,
  coalesce(u.usage_count, 0) AS usage_count, u.last_used_at, v.created_at, v.updated_at
FROM {schema}.agent_verifiers_view v
LEFT JOIN {schema}.verifier_usage u ON u.verifier_id = v.id
WHERE v.agent_id = %(agent_id)s AND v.issuer_id = %(issuer_id)s
  AND (%(verifier_id)s::text IS NULL OR v.id = %(verifier_id)s)
ORDER BY v.created_at, v.id
"""

_WALLET_VERIFIER = """
SELECT v.id, v.agent_id, v.type, v.status, v.name, v.description, v.credential,
  coalesce(u.usage_count, 0) AS usage_count, u.last_used_at, v.created_at, v.updated_at
FROM {schema}.agent_verifiers_view v
LEFT JOIN {schema}.verifier_usage u ON u.verifier_id = v.id
WHERE v.issuer_id = %(issuer_id)s AND v.type = 'wallet' AND v.status = 'active'
  AND v.network = %(network)s AND v.lookup_address = %(lookup_address)s
"""

# Memberships of organizations on their way out (deleting) or gone are no memberships.
_MEMBERSHIPS = """
SELECT m.org_id, m.agent_id AS member_id, m.issuer_id, m.status, m.status_reason, m.status_by,
  m.scopes, m.groups, m.user_title, m.metadata, m.joined_at, m.updated_at,
  coalesce(o.status, 'active') AS organization_status
FROM {schema}.agent_memberships_view m
LEFT JOIN {schema}.organizations_seen o ON o.id = m.org_id
WHERE m.agent_id = ANY(%(agent_ids)s)
  AND coalesce(o.status, 'active') NOT IN ('deleting', 'deleted')
ORDER BY m.joined_at, m.org_id
"""

_AGENT_IDS_OF_ISSUER = "SELECT id FROM {schema}.agents_view WHERE issuer_id = %s ORDER BY id"

_COUNT_USE = """
UPDATE {schema}.verifier_usage SET usage_count = usage_count + 1,
  last_used_at = greatest(coalesce(last_used_at, 0), %(at)s)
WHERE verifier_id = %(verifier_id)s
"""

_NEW_CHALLENGE = """
WITH swept AS (DELETE FROM {schema}.wallet_challenges WHERE expires_at < %(now)s)
INSERT INTO {schema}.wallet_challenges (nonce, agent_id, issuer_id, network, expires_at)
VALUES (%(nonce)s, %(agent_id)s, %(issuer_id)s, %(network)s, %(expires_at)s)
"""

_TAKE_CHALLENGE = """
DELETE FROM {schema}.wallet_challenges
WHERE nonce = %(nonce)s AND agent_id = %(agent_id)s AND network = %(network)s
  AND expires_at >= %(now)s
RETURNING nonce
"""

_RELEASE_WALLETS = "DELETE FROM {schema}.reservations WHERE scope = %s AND owner = ANY(%s)"


def _after(after: SortKey | None) -> dict[str, Any]:
    key = time_id_key(after)  # a cursor of another shape is a 400
    return {"after_at": key and key[0], "after_id": key and key[1]}


class AgentQueries:
    def __init__(self, schema: str) -> None:
        self._agents = render(_AGENTS, schema=schema)
        self._verifiers = render(_VERIFIERS, schema=schema)
        self._wallet_verifier = render(_WALLET_VERIFIER, schema=schema)
        self._memberships = render(_MEMBERSHIPS, schema=schema)
        self._agent_ids_of_issuer = render(_AGENT_IDS_OF_ISSUER, schema=schema)
        self._count_use = render(_COUNT_USE, schema=schema)
        self._new_challenge = render(_NEW_CHALLENGE, schema=schema)
        self.take_challenge: LiteralString = render(_TAKE_CHALLENGE, schema=schema)
        self.release_wallets: LiteralString = render(_RELEASE_WALLETS, schema=schema)

    async def agents(
        self,
        conn: psycopg.AsyncConnection[Any],
        account_id: str,
        issuer_id: str,
        filters: AgentFilters,
        after: SortKey | None,
        limit: int,
        agent_id: str | None = None,
    ) -> list[AgentRow]:
        params = {"account_id": account_id, "issuer_id": issuer_id, "agent_id": agent_id,
                  **msgspec.structs.asdict(filters), "limit": limit, **_after(after)}  # fmt: skip
        cur = conn.cursor(row_factory=class_row(AgentRow))
        await cur.execute(self._agents, params)
        return await cur.fetchall()

    async def agent(
        self, conn: psycopg.AsyncConnection[Any], account_id: str, issuer_id: str, agent_id: str
    ) -> AgentRow | None:
        rows = await self.agents(conn, account_id, issuer_id, AgentFilters(), None, 1, agent_id)
        return rows[0] if rows else None

    async def verifiers(
        self,
        conn: psycopg.AsyncConnection[Any],
        issuer_id: str,
        agent_id: str,
        verifier_id: str | None = None,
    ) -> list[VerifierRow]:
        params = {"issuer_id": issuer_id, "agent_id": agent_id, "verifier_id": verifier_id}
        cur = conn.cursor(row_factory=class_row(VerifierRow))
        await cur.execute(self._verifiers, params)
        return await cur.fetchall()

    async def wallet_verifier(
        self, conn: psycopg.AsyncConnection[Any], issuer_id: str, network: str, lookup: str
    ) -> VerifierRow | None:
        params = {"issuer_id": issuer_id, "network": network, "lookup_address": lookup}
        cur = conn.cursor(row_factory=class_row(VerifierRow))
        await cur.execute(self._wallet_verifier, params)
        return await cur.fetchone()

    async def memberships(
        self, conn: psycopg.AsyncConnection[Any], agent_ids: list[str]
    ) -> list[MembershipRow]:
        cur = conn.cursor(row_factory=class_row(MembershipRow))
        await cur.execute(self._memberships, {"agent_ids": agent_ids})
        return await cur.fetchall()

    async def agent_ids_of_issuer(
        self, conn: psycopg.AsyncConnection[Any], issuer_id: str
    ) -> list[str]:
        cur = await conn.execute(self._agent_ids_of_issuer, [issuer_id])
        return [str(r[0]) for r in await cur.fetchall()]

    async def count_use(
        self, conn: psycopg.AsyncConnection[Any], verifier_id: str, at: int
    ) -> None:
        await conn.execute(self._count_use, {"verifier_id": verifier_id, "at": at})

    async def new_challenge(
        self,
        conn: psycopg.AsyncConnection[Any],
        *,
        nonce: str,
        agent_id: str,
        issuer_id: str,
        network: str,
        now: int,
        expires_at: int,
    ) -> None:
        await conn.execute(self._new_challenge, {
            "nonce": nonce, "agent_id": agent_id, "issuer_id": issuer_id, "network": network,
            "now": now, "expires_at": expires_at})  # fmt: skip
