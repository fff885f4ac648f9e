"""The CreditLedger aggregate, one per account (platform.md 5.2-5.5, 5.10): its balance in
integer μUSD, the usage credit currently granted (what is left of it, and when it lapses) and
its payment methods. Every balance change is one `credit-ledger.entry-recorded` carrying the
balance after it, so the balance is by construction the sum of the entries; every change but
usage is also `account.credits.updated`, and a crossing from > 0 to <= 0 `account.credits.
depleted`. Idempotency on payments and usage hours is the handler's (reservations)."""

from __future__ import annotations

from typing import assert_never

import msgspec

from authpi.billing.domain.commands import (
    AddMethod,
    Adjust,
    ExpireGrant,
    Grant,
    LedgerCommand,
    RecordTopup,
    RecordUsage,
    Refund,
    RemoveMethod,
    UpdateMethod,
)
from authpi.contracts.base import Event
from authpi.contracts.billing import (
    AccountCreditsDepleted,
    AccountCreditsUpdated,
    LedgerEntryRecorded,
    PaymentMethodAdded,
    PaymentMethodRemoved,
    PaymentMethodSnapshot,
    PaymentMethodUpdated,
)
from authpi.errors import InvalidRequest, NotFound

METHOD_FIELDS = ("enabled", "network", "asset", "payer", "topup_amount")


class ActiveGrant(msgspec.Struct, frozen=True, kw_only=True):
    entry_id: str
    remaining: int
    expires_at: int | None


class Ledger(msgspec.Struct, frozen=True, kw_only=True):
    balance: int = 0
    entries: int = 0
    grant: ActiveGrant | None = None
    granted_period: str | None = None  # the last month a monthly credit was granted for
    topups: frozenset[str] = frozenset()  # entry ids of top-ups (refund targets)
    methods: dict[str, PaymentMethodSnapshot] = {}


INITIAL = Ledger()


def _entry(state: Ledger, entry: LedgerEntryRecorded, mode: str) -> list[Event]:
    """The entry, its `account.credits.updated` (not for usage) and a depletion if it crosses."""
    events: list[Event] = [entry]
    if entry.entry_type != "usage":
        events.append(
            AccountCreditsUpdated(
                entry_id=entry.entry_id, entry_type=entry.entry_type, amount=entry.amount,
                balance=entry.balance_after,
                payment_reference=entry.reference if entry.entry_type == "topup" else None,
            )
        )  # fmt: skip
    if state.balance > 0 >= entry.balance_after:
        events.append(AccountCreditsDepleted(balance=entry.balance_after, billing_mode=mode))
    return events


def _fold(state: Ledger, events: list[Event]) -> Ledger:
    for event in events:
        state = evolve(state, event)
    return state


def _expiry(state: Ledger, entry_id: str, now: int, mode: str) -> list[Event]:
    """The lapsed grant's unused remainder expires (platform.md 5.5: no roll-over)."""
    grant = state.grant
    if grant is None or grant.expires_at is None or now < grant.expires_at:
        return []
    if grant.remaining <= 0:
        return []
    entry = LedgerEntryRecorded(
        entry_id=entry_id, entry_type="expiry", amount=-grant.remaining,
        balance_after=state.balance - grant.remaining, operation="grant_expired",
        related_entry_id=grant.entry_id, created_at=now,
    )  # fmt: skip
    return _entry(state, entry, mode)


def _usage(cmd: RecordUsage, state: Ledger) -> list[Event]:
    if cmd.count <= 0 or cmd.rate < 0:
        raise InvalidRequest("usage needs a positive count", reason="ledger.bad_usage")
    events = _expiry(state, cmd.expiry_id, cmd.now, cmd.mode)
    state = _fold(state, events)
    newer = state.granted_period is None or state.granted_period < cmd.period
    if cmd.monthly_credit > 0 and newer:
        grant = LedgerEntryRecorded(
            entry_id=cmd.grant_id, entry_type="grant", amount=cmd.monthly_credit,
            balance_after=state.balance + cmd.monthly_credit, operation="monthly_credit",
            expires_at=cmd.period_end, period=cmd.period, created_at=cmd.now,
        )  # fmt: skip
        granted = _entry(state, grant, cmd.mode)
        events += granted
        state = _fold(state, granted)
    total = cmd.count * cmd.rate
    usage = LedgerEntryRecorded(
        entry_id=cmd.entry_id, entry_type="usage", amount=-total,
        balance_after=state.balance - total, operation=cmd.operation, dimension=cmd.dimension,
        config_version=cmd.config_version, settled_total=total, count=cmd.count,
        period=cmd.period, hour=cmd.hour, created_at=cmd.now,
    )  # fmt: skip
    return events + _entry(state, usage, cmd.mode)


def _method(state: Ledger, method_id: str) -> PaymentMethodSnapshot:
    method = state.methods.get(method_id)
    if method is None:
        raise NotFound("no such payment method", reason="payment_method.not_found")
    return method


def _update_method(cmd: UpdateMethod, state: Ledger) -> list[Event]:
    method = _method(state, cmd.method_id)
    if method.removed_at is not None:
        raise NotFound("no such payment method", reason="payment_method.removed")
    current = {f: getattr(method, f) for f in METHOD_FIELDS}
    changed = [f for f in METHOD_FIELDS if f in cmd.changes and cmd.changes[f] != current[f]]
    if not changed:
        return []
    values = {**current, **{f: cmd.changes[f] for f in changed}}
    disabled_at = method.disabled_at
    if "enabled" in changed:
        disabled_at = None if values["enabled"] else cmd.now
    return [
        PaymentMethodUpdated(
            id=method.id, enabled=bool(values["enabled"]), network=str(values["network"]),
            asset=str(values["asset"]),
            payer=None if values["payer"] is None else str(values["payer"]),
            topup_amount=int(str(values["topup_amount"])), created_at=method.created_at,
            disabled_at=disabled_at, changed=changed,
        )
    ]  # fmt: skip


def decide(cmd: LedgerCommand, state: Ledger) -> list[Event]:
    match cmd:
        case RecordTopup():
            if cmd.amount <= 0:
                raise InvalidRequest("a top-up must be positive", reason="ledger.bad_topup")
            if cmd.method_id is not None:
                _method(state, cmd.method_id)
            entry = LedgerEntryRecorded(
                entry_id=cmd.entry_id, entry_type="topup", amount=cmd.amount,
                balance_after=state.balance + cmd.amount, operation=cmd.operation,
                reference=cmd.reference, external_reference=cmd.external_reference,
                method_id=cmd.method_id, created_at=cmd.now,
            )  # fmt: skip
            return _entry(state, entry, cmd.mode)
        case Grant():
            if cmd.amount <= 0:
                raise InvalidRequest("a grant must be positive", reason="ledger.bad_grant")
            entry = LedgerEntryRecorded(
                entry_id=cmd.entry_id, entry_type="grant", amount=cmd.amount,
                balance_after=state.balance + cmd.amount, operation=cmd.operation,
                expires_at=cmd.expires_at, period=cmd.period, created_at=cmd.now,
            )  # fmt: skip
            return _entry(state, entry, cmd.mode)
        case Adjust():
            if cmd.amount == 0:
                raise InvalidRequest("an adjustment moves the balance", reason="ledger.zero")
            entry = LedgerEntryRecorded(
                entry_id=cmd.entry_id, entry_type="adjustment", amount=cmd.amount,
                balance_after=state.balance + cmd.amount, operation=cmd.operation,
                reference=cmd.reference, created_at=cmd.now,
            )  # fmt: skip
            return _entry(state, entry, cmd.mode)
        case Refund():
            if cmd.amount <= 0:
                raise InvalidRequest("a refund must be positive", reason="ledger.bad_refund")
            if cmd.related_entry_id not in state.topups:
                raise NotFound("no such top-up to refund", reason="ledger.refund_target")
            entry = LedgerEntryRecorded(
                entry_id=cmd.entry_id, entry_type="refund", amount=-cmd.amount,
                balance_after=state.balance - cmd.amount, operation="refund",
                related_entry_id=cmd.related_entry_id,
                external_reference=cmd.external_reference, created_at=cmd.now,
            )  # fmt: skip
            return _entry(state, entry, cmd.mode)
        case RecordUsage():
            return _usage(cmd, state)
        case ExpireGrant():
            return _expiry(state, cmd.entry_id, cmd.now, cmd.mode)
        case AddMethod():
            if cmd.method_id in state.methods:
                return []
            return [
                PaymentMethodAdded(
                    id=cmd.method_id, enabled=cmd.enabled, network=cmd.network,
                    asset=cmd.asset, payer=cmd.payer, topup_amount=cmd.topup_amount,
                    created_at=cmd.now, disabled_at=None if cmd.enabled else cmd.now,
                )
            ]  # fmt: skip
        case UpdateMethod():
            return _update_method(cmd, state)
        case RemoveMethod():
            method = _method(state, cmd.method_id)
            if method.removed_at is not None:
                return []
            return [
                PaymentMethodRemoved(
                    id=method.id, enabled=False, network=method.network, asset=method.asset,
                    payer=method.payer, topup_amount=method.topup_amount,
                    created_at=method.created_at, disabled_at=method.disabled_at or cmd.now,
                    removed_at=cmd.now,
                )
            ]  # fmt: skip
        case _:
            assert_never(cmd)


def _spend_grant(grant: ActiveGrant | None, amount: int) -> ActiveGrant | None:
    """Debits draw on the usage credit first (platform.md 5.5: it applies before any charge)."""
    if grant is None or amount >= 0:
        return grant
    used = min(grant.remaining, -amount)
    return msgspec.structs.replace(grant, remaining=grant.remaining - used)


def _apply_entry(state: Ledger, e: LedgerEntryRecorded) -> Ledger:
    grant = state.grant
    granted_period = state.granted_period
    topups = state.topups
    match e.entry_type:
        case "grant":
            grant = ActiveGrant(entry_id=e.entry_id, remaining=e.amount, expires_at=e.expires_at)
            if e.operation == "monthly_credit" and e.period is not None:
                granted_period = e.period
        case "expiry":
            grant = None if grant is not None and grant.entry_id == e.related_entry_id else grant
        case "usage":
            grant = _spend_grant(grant, e.amount)
        case "topup":
            topups = topups | {e.entry_id}
        case _:
            pass
    return msgspec.structs.replace(
        state, balance=e.balance_after, entries=state.entries + 1, grant=grant,
        granted_period=granted_period, topups=topups,
    )  # fmt: skip


def evolve(state: Ledger, event: Event) -> Ledger:
    match event:
        case LedgerEntryRecorded():
            return _apply_entry(state, event)
        case PaymentMethodAdded() | PaymentMethodUpdated() | PaymentMethodRemoved():
            return msgspec.structs.replace(state, methods={**state.methods, event.id: event})
        case _:
            return state
