"""webhook-audit-facts: the public high-volume facts (`machine.token.issued`,
`session.token-refreshed`; platform.md 6.2) into the audit log, each fetch of fact batches in one
multi-row INSERT (one JSON array of the rows), in the transaction that stores the stream sequence.
A fact's evt_ id is derived from its time and jti, so a re-published batch inserts nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from authpi.contracts.facts import Fact
from authpi.eventstore.sqltext import render
from authpi.webhook.domain.public_events import from_fact
from authpi.webhook.reactions.audit import INSERT_MANY, rows_json


class AuditFactsReaction:
    name = "webhook-audit-facts"
    fact_types = ("machine.token.issued", "session.token-refreshed")

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._insert = render(INSERT_MANY, schema=schema)

    async def apply_facts(self, conn: psycopg.AsyncConnection[Any], facts: Sequence[Fact]) -> None:
        events = [e for e in map(from_fact, facts) if e is not None]
        if events:
            await conn.execute(self._insert, [rows_json(events)])
