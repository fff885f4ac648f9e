"""directory-billing: the billing fields of accounts (platform.md 5.2) from the billing
service's events, into the directory's own views: the balance after each ledger entry
(`credit-ledger.entry-recorded`) and each payment method's public object (`payment-method.*`).
Rows keep the ledger stream version of their last event; an older one changes nothing."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.contracts.billing import (
    MU,
    LedgerEntryRecorded,
    PaymentMethodAdded,
    PaymentMethodRemoved,
    PaymentMethodUpdated,
)
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent

_BALANCE = """
INSERT INTO {schema}.account_billing_view AS b (account_id, balance, version) VALUES (%s, %s, %s)
ON CONFLICT (account_id) DO UPDATE SET balance = excluded.balance, version = excluded.version
WHERE b.version < excluded.version
"""
_METHOD = """
INSERT INTO {schema}.account_payment_methods_view AS m (id, account_id, method, created_at, version)
VALUES (%s, %s, %s::jsonb, %s, %s)
ON CONFLICT (id) DO UPDATE SET method = excluded.method, version = excluded.version
WHERE m.version < excluded.version
"""

Method = PaymentMethodAdded | PaymentMethodUpdated | PaymentMethodRemoved


def method_object(m: Method) -> dict[str, Any]:
    """The x402 method object (platform.md 5.3)."""
    return {
        "id": m.id, "type": m.kind, "enabled": m.enabled, "network": m.network,
        "asset": m.asset, "payer": m.payer, f"topup_amount_{MU}usd": m.topup_amount,
        "created_at": m.created_at, "disabled_at": m.disabled_at, "removed_at": m.removed_at,
    }  # fmt: skip


class BillingReaction:
    name = "directory-billing"
    event_types = (
        "credit-ledger.entry-recorded",
        "payment-method.added",
        "payment-method.updated",
        "payment-method.removed",
    )

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._balance = render(_BALANCE, schema=schema)
        self._method = render(_METHOD, schema=schema)
        self._reset = [
            render("TRUNCATE {schema}.account_billing_view", schema=schema),
            render("TRUNCATE {schema}.account_payment_methods_view", schema=schema),
        ]

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        account_id = stored.meta.account_id
        version = stored.stream_version
        match stored.event:
            case LedgerEntryRecorded() as e:
                await conn.execute(self._balance, [account_id, e.balance_after, version])
            case PaymentMethodAdded() | PaymentMethodUpdated() | PaymentMethodRemoved() as m:
                await conn.execute(
                    self._method,
                    [m.id, account_id, jsonb.dumps(method_object(m)), m.created_at, version],
                )
            case _:
                pass

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        for statement in self._reset:
            await conn.execute(statement)
