"""webhook-audit-facts: the public high-volume facts (`machine.token.issued`,
`session.token-refreshed`; platform.md 6.2) into the audit log, each fetch of fact batches in one
multi-row INSERT (one JSON array of the rows), in the transaction that stores the stream sequence.
A fact's evt_ id is derived from its time and jti, so a re-published batch inserts nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import psycopg

from authpi.contracts.facts import Fact
from authpi.contracts.public import PublicEvent
from authpi.eventstore.sqltext import render
from authpi.webhook.domain.public_events import from_fact
from authpi.webhook.reactions.audit import INSERT_MANY, rows_json

SLICE = 256  # facts turned into events between two yields to the event loop


class AuditFactsReaction:
    name = "webhook-audit-facts"
    fact_types = ("machine.token.issued", "session.token-refreshed")

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._insert = render(INSERT_MANY, schema=schema)

    async def apply_facts(self, conn: psycopg.AsyncConnection[Any], facts: Sequence[Fact]) -> None:
        events: list[PublicEvent] = []
        for start in range(0, len(facts), SLICE):
            if start:
                # A fetch holds thousands of facts under load (~5 us each here): the requests
                # this process also serves get in between slices instead of waiting them all out.
                await asyncio.sleep(0)
            events += [e for e in map(from_fact, facts[start : start + SLICE]) if e is not None]
        if events:
            await conn.execute(self._insert, [rows_json(events)])
