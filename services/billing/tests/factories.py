"""Builders of billing commands and events for the decider tests."""

from __future__ import annotations

from typing import Any

from authpi.billing.domain.commands import AddMethod, RecordTopup, RecordUsage
from authpi.contracts.billing import AccountCreditsUpdated, LedgerEntryRecorded

T0 = 1_780_000_000_000  # 2026-05-28
MODE = "gated"


def topup(entry_id: str, amount: int, **over: Any) -> RecordTopup:
    fields: dict[str, Any] = {
        "entry_id": entry_id, "amount": amount, "reference": f"0xnonce-{entry_id}",
        "external_reference": "0xtx", "method_id": None, "now": T0, "mode": MODE,
    }  # fmt: skip
    return RecordTopup(**{**fields, **over})


def topped_up(entry_id: str, amount: int, balance_after: int) -> LedgerEntryRecorded:
    return LedgerEntryRecorded(
        entry_id=entry_id, entry_type="topup", amount=amount, balance_after=balance_after,
        operation="x402", reference=f"0xnonce-{entry_id}", external_reference="0xtx",
        created_at=T0,
    )  # fmt: skip


def credits_updated(entry: LedgerEntryRecorded) -> AccountCreditsUpdated:
    return AccountCreditsUpdated(
        entry_id=entry.entry_id, entry_type=entry.entry_type, amount=entry.amount,
        balance=entry.balance_after,
        payment_reference=entry.reference if entry.entry_type == "topup" else None,
    )  # fmt: skip


def usage(entry_id: str, count: int, rate: int, **over: Any) -> RecordUsage:
    fields: dict[str, Any] = {
        "entry_id": entry_id, "dimension": "machine_auth", "operation": "machine.token.issued",
        "count": count, "rate": rate, "config_version": "v1", "hour": T0 - T0 % 3_600_000,
        "period": "2026-05", "period_end": 1_780_272_000_000, "monthly_credit": 0,
        "grant_id": f"{entry_id}-grant", "expiry_id": f"{entry_id}-expiry", "now": T0,
        "mode": MODE,
    }  # fmt: skip
    return RecordUsage(**{**fields, **over})


def add_method(method_id: str = "pm_1", **over: Any) -> AddMethod:
    fields: dict[str, Any] = {
        "method_id": method_id, "network": "eip155:84532",
        "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "payer": None,
        "topup_amount": 1_000_000, "now": T0,
    }  # fmt: skip
    return AddMethod(**{**fields, **over})
