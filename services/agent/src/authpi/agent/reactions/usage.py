"""agent-verifier-usage: `usage_count` and `last_used_at` of agent verifiers (platform.md 3.3),
aggregated from the `machine.token.issued` facts the token endpoint publishes in batches on the
FACTS stream (DESIGN.md 3; a fact carries `agent_id` and `verifier_id`).

Run by the consumer runtime (messaging.facts.FactConsumer), once per deployment: each fetch is
tallied per verifier and counted in one statement, in the transaction that stores the stream
sequence, so a batch counts exactly once. An undecodable batch is dead-lettered and terminated."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import psycopg

from authpi.contracts.facts import Fact, MachineTokenIssued
from authpi.eventstore.sqltext import render

_COUNT = """
UPDATE {schema}.verifier_usage u SET usage_count = u.usage_count + d.n,
  last_used_at = greatest(coalesce(u.last_used_at, 0), d.last_used_at)
FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) AS d(verifier_id, n, last_used_at)
WHERE u.verifier_id = d.verifier_id
"""


class Tally(msgspec.Struct, kw_only=True):
    count: int = 0
    last_used_at: int = 0


def tally(facts: Sequence[Any], into: dict[str, Tally]) -> None:
    """Add the agent tokens among `facts` to the per-verifier tallies."""
    for fact in facts:
        if isinstance(fact, MachineTokenIssued) and fact.agent_id and fact.verifier_id:
            entry = into.setdefault(fact.verifier_id, Tally())
            entry.count += 1
            entry.last_used_at = max(entry.last_used_at, fact.issued_at)


class UsageReaction:
    name = "agent-verifier-usage"
    fact_types = ("machine.token.issued",)

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._count = render(_COUNT, schema=schema)

    async def apply_facts(self, conn: psycopg.AsyncConnection[Any], facts: Sequence[Fact]) -> None:
        tallies: dict[str, Tally] = {}
        tally(facts, tallies)
        if not tallies:
            return
        ids = list(tallies)
        counts = [tallies[i].count for i in ids]
        await conn.execute(self._count, [ids, counts, [tallies[i].last_used_at for i in ids]])
