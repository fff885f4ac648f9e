"""ledger_entries_view, balances_view and payment_methods_view: the inline projection of the
credit-ledger streams (same transaction as the events). A ledger entry carries the balance
after it, so the balance row is that value, never a running sum of its own."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.contracts.billing import (
    LedgerEntryRecorded,
    PaymentMethodAdded,
    PaymentMethodRemoved,
    PaymentMethodUpdated,
)
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent

_ENTRY = """
INSERT INTO {schema}.ledger_entries_view (entry_id, account_id, seq, type, amount, balance_after,
  operation, reference, related_entry_id, expires_at, dimension, config_version,
  external_reference, settled_total, count, method_id, period, hour, created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (entry_id) DO NOTHING
"""
_BALANCE = """
INSERT INTO {schema}.balances_view (account_id, balance, entries, updated_at)
VALUES (%s, %s, 1, %s)
ON CONFLICT (account_id) DO UPDATE SET balance = excluded.balance,
  entries = {schema}.balances_view.entries + 1, updated_at = excluded.updated_at
"""
_METHOD = """
INSERT INTO {schema}.payment_methods_view (id, account_id, type, enabled, network, asset, payer,
  topup_amount, created_at, disabled_at, removed_at, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (id) DO UPDATE SET enabled = excluded.enabled, network = excluded.network,
  asset = excluded.asset, payer = excluded.payer, topup_amount = excluded.topup_amount,
  disabled_at = excluded.disabled_at, removed_at = excluded.removed_at,
  updated_at = excluded.updated_at
"""


class LedgerView:
    name = "billing-ledger"
    event_types = (
        "credit-ledger.entry-recorded",
        "payment-method.added",
        "payment-method.updated",
        "payment-method.removed",
    )

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._entry = render(_ENTRY, schema=schema)
        self._balance = render(_BALANCE, schema=schema)
        self._method = render(_METHOD, schema=schema)
        self._reset = [
            render("DELETE FROM {schema}.ledger_entries_view", schema=schema),
            render("DELETE FROM {schema}.balances_view", schema=schema),
            render("DELETE FROM {schema}.payment_methods_view", schema=schema),
        ]

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        account_id = stored.meta.account_id
        match stored.event:
            case LedgerEntryRecorded() as e:
                await conn.execute(
                    self._entry,
                    [e.entry_id, account_id, stored.position, e.entry_type, e.amount,
                     e.balance_after, e.operation, e.reference, e.related_entry_id, e.expires_at,
                     e.dimension, e.config_version, e.external_reference, e.settled_total,
                     e.count, e.method_id, e.period, e.hour, e.created_at],
                )  # fmt: skip
                await conn.execute(self._balance, [account_id, e.balance_after, e.created_at])
            case PaymentMethodAdded() | PaymentMethodUpdated() | PaymentMethodRemoved() as m:
                updated = None if isinstance(m, PaymentMethodAdded) else stored.recorded_at
                await conn.execute(
                    self._method,
                    [m.id, account_id, m.kind, m.enabled, m.network, m.asset, m.payer,
                     m.topup_amount, m.created_at, m.disabled_at, m.removed_at, updated],
                )  # fmt: skip
            case _:
                pass

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        for statement in self._reset:
            await conn.execute(statement)
