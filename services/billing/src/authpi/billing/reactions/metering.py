"""billing-metering: the batched facts (DESIGN.md 3) counted per account, dimension and hour
(platform.md 5.5): `machine.token.issued` as machine_auth, `human.sign-in` as human_auth and
`api-key.verified` as api_key_verification. Run by the FactConsumer once per deployment, so each
fetch is added to usage_hours in the transaction that stores the stream sequence: a batch counts
exactly once, across redeliveries and crashes. A fact of an hour already closed into the ledger
counts in the next open hour instead (one usage entry per dimension and hour, never a second)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, LiteralString

import psycopg

from authpi.billing.domain.rates import HOUR_MS, hour_of
from authpi.contracts.facts import ApiKeyVerified, Fact, HumanSignIn, MachineTokenIssued
from authpi.crypto.clock import Clock
from authpi.eventstore.sqltext import render

Key = tuple[str, str, int]  # account, dimension, hour

ADD_USAGE = """
INSERT INTO {schema}.usage_hours AS u (account_id, dimension, hour, count)
SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::bigint[])
ON CONFLICT (account_id, dimension, hour) DO UPDATE SET count = u.count + excluded.count
WHERE u.closed_entry_id IS NULL
RETURNING account_id, dimension, hour
"""


def tally(facts: Sequence[Fact]) -> dict[Key, int]:
    counts: dict[Key, int] = {}
    for fact in facts:
        match fact:
            case MachineTokenIssued():
                key = (fact.account_id, "machine_auth", hour_of(fact.issued_at))
            case HumanSignIn():
                key = (fact.account_id, "human_auth", hour_of(fact.signed_in_at))
            case ApiKeyVerified():
                key = (fact.account_id, "api_key_verification", hour_of(fact.verified_at))
            case _:
                continue
        counts[key] = counts.get(key, 0) + 1
    return counts


class MeteringReaction:
    name = "billing-metering"
    fact_types = ("machine.token.issued", "human.sign-in", "api-key.verified")

    def __init__(self, schema: str, clock: Clock) -> None:
        self.schema = schema
        self.clock = clock
        self._add = render(ADD_USAGE, schema=schema)

    async def apply_facts(self, conn: psycopg.AsyncConnection[Any], facts: Sequence[Fact]) -> None:
        await add_counts(conn, self._add, tally(facts), hour_of(self.clock.now_ms()))


async def add_counts(
    conn: psycopg.AsyncConnection[Any], statement: LiteralString, counts: dict[Key, int], floor: int
) -> None:
    """Add `counts` to their usage hours; the count of an hour already closed goes to a later
    open one (at least `floor`, the current hour)."""
    pending = counts
    while pending:
        keys = sorted(pending)  # one lock order for every writer of these rows
        cur = await conn.execute(
            statement,
            [[k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
             [pending[k] for k in keys]],
        )  # fmt: skip
        done = {(a, d, int(h)) for a, d, h in await cur.fetchall()}
        moved: dict[Key, int] = {}
        for key in keys:
            if key not in done:
                later = (key[0], key[1], max(floor, key[2] + HOUR_MS))
                moved[later] = moved.get(later, 0) + pending[key]
        pending = moved
