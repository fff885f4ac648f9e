"""gateway-billing: each account's prepaid balance from the billing service's ledger entries
(`credit-ledger.entry-recorded` carries the balance after it), into account_balances_view, for
the 402 gate (edge/payments.py). Each row keeps the ledger stream version of its entry; an
older one changes nothing."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.contracts.billing import LedgerEntryRecorded
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent

BILLING_CONSUMER = "gateway-billing"

_UPSERT = """
INSERT INTO {schema}.account_balances_view AS b (account_id, balance, version)
VALUES (%s, %s, %s)
ON CONFLICT (account_id) DO UPDATE SET balance = excluded.balance, version = excluded.version
WHERE b.version < excluded.version
"""


class BillingReaction:
    name = BILLING_CONSUMER
    event_types = ("credit-ledger.entry-recorded",)

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._upsert = render(_UPSERT, schema=schema)
        self._reset = render("TRUNCATE {schema}.account_balances_view", schema=schema)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case LedgerEntryRecorded() as e:
                await conn.execute(
                    self._upsert, [stored.meta.account_id, e.balance_after, stored.stream_version]
                )
            case _:
                pass

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)
