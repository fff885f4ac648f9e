"""The CreditLedger decider (platform.md 5.4, 5.5, 5.10): every entry records the balance after
it; every change but usage is `account.credits.updated`; a crossing from > 0 to <= 0 is one
`account.credits.depleted`; the monthly usage credit is granted once per period, drawn first and
its remainder expires; refunds need a top-up; payment methods keep their record when removed."""

from __future__ import annotations

import pytest

from authpi.billing.domain import ledger
from authpi.billing.domain.commands import (
    Adjust,
    ExpireGrant,
    Grant,
    Refund,
    RemoveMethod,
    UpdateMethod,
)
from authpi.contracts.billing import (
    AccountCreditsDepleted,
    AccountCreditsUpdated,
    LedgerEntryRecorded,
    PaymentMethodAdded,
    PaymentMethodRemoved,
    PaymentMethodUpdated,
)
from authpi.errors import InvalidRequest, NotFound
from authpi.testing.decider import DeciderSpec
from services.billing.tests.factories import (
    MODE,
    T0,
    add_method,
    credits_updated,
    topped_up,
    topup,
    usage,
)


@pytest.fixture
def spec() -> DeciderSpec:
    return DeciderSpec(ledger)


def test_topup_records_entry_and_credits_updated(spec):
    entry = topped_up("cle_1", 1_000_000, 1_000_000)
    spec.given().when(topup("cle_1", 1_000_000)).then(entry, credits_updated(entry))


def test_usage_debits_without_credits_updated(spec):
    first = topped_up("cle_1", 1_000_000, 1_000_000)
    events = ledger.decide(usage("cle_2", 100, 50), spec.given(first).state())
    assert [type(e) for e in events] == [LedgerEntryRecorded]
    entry = events[0]
    assert isinstance(entry, LedgerEntryRecorded)
    assert (entry.entry_type, entry.amount, entry.balance_after) == ("usage", -5000, 995_000)
    assert (entry.count, entry.settled_total, entry.config_version) == (100, 5000, "v1")


def test_crossing_to_zero_is_depleted_once(spec):
    first = topped_up("cle_1", 5000, 5000)
    state = spec.given(first).state()
    crossing = ledger.decide(usage("cle_2", 100, 50), state)
    assert crossing[-1] == AccountCreditsDepleted(balance=0, billing_mode=MODE)
    state = spec.given(first, *crossing).state()
    again = ledger.decide(usage("cle_3", 1, 50), state)
    assert not any(isinstance(e, AccountCreditsDepleted) for e in again)
    assert state.balance == 0


def test_never_positive_account_is_not_depleted(spec):
    events = ledger.decide(usage("cle_1", 3, 50), spec.given().state())
    assert not any(isinstance(e, AccountCreditsDepleted) for e in events)


def test_monthly_credit_granted_once_per_period_and_drawn_first(spec):
    cmd = usage("cle_2", 10, 50, monthly_credit=1_000_000)
    events = ledger.decide(cmd, spec.given().state())
    grant, updated, use = events
    assert isinstance(grant, LedgerEntryRecorded) and isinstance(use, LedgerEntryRecorded)
    assert (grant.entry_type, grant.operation, grant.amount) == ("grant", "monthly_credit", 10**6)
    assert grant.expires_at == cmd.period_end
    assert isinstance(updated, AccountCreditsUpdated)
    assert use.balance_after == 1_000_000 - 500
    state = spec.given(*events).state()
    assert state.grant is not None and state.grant.remaining == 1_000_000 - 500
    later = ledger.decide(usage("cle_3", 1, 50, monthly_credit=1_000_000), state)
    assert [e.entry_type for e in later if isinstance(e, LedgerEntryRecorded)] == ["usage"]


def test_lapsed_grant_remainder_expires_before_the_next_period(spec):
    may = usage("cle_2", 10, 50, monthly_credit=1_000_000)
    state = spec.given(*ledger.decide(may, ledger.INITIAL)).state()
    june = usage(
        "cle_3", 10, 50, monthly_credit=1_000_000, period="2026-06", now=may.period_end + 1,
        hour=may.period_end, period_end=may.period_end + 30 * 86_400_000,
    )  # fmt: skip
    entries = [e for e in ledger.decide(june, state) if isinstance(e, LedgerEntryRecorded)]
    assert [(e.entry_type, e.amount) for e in entries] == [
        ("expiry", -999_500), ("grant", 1_000_000), ("usage", -500)
    ]  # fmt: skip
    assert entries[0].related_entry_id == "cle_2-grant"
    assert entries[-1].balance_after == 999_500


def test_expire_grant_before_expiry_is_a_no_op(spec):
    grant = Grant(entry_id="g", amount=100, operation="trial", expires_at=T0 + 10, now=T0,
                  mode=MODE)  # fmt: skip
    state = spec.given(*ledger.decide(grant, ledger.INITIAL)).state()
    assert ledger.decide(ExpireGrant(entry_id="x", now=T0 + 5, mode=MODE), state) == []
    expired = ledger.decide(ExpireGrant(entry_id="x", now=T0 + 10, mode=MODE), state)
    assert isinstance(expired[-1], AccountCreditsDepleted)


def test_adjustment_and_refund(spec):
    first = topped_up("cle_1", 2000, 2000)
    adjust = Adjust(entry_id="a", amount=-500, operation="correction", now=T0, mode=MODE)
    events = ledger.decide(adjust, spec.given(first).state())
    assert isinstance(events[1], AccountCreditsUpdated) and events[1].balance == 1500
    refund = Refund(entry_id="r", amount=1500, related_entry_id="cle_1", now=T0, mode=MODE)
    out = ledger.decide(refund, spec.given(first, *events).state())
    assert isinstance(out[0], LedgerEntryRecorded) and out[0].related_entry_id == "cle_1"
    assert isinstance(out[-1], AccountCreditsDepleted)


def test_refund_of_something_else_than_a_topup_is_refused(spec):
    refund = Refund(entry_id="r", amount=1, related_entry_id="nope", now=T0, mode=MODE)
    spec.given().when(refund).raises(NotFound)


def test_zero_or_negative_topup_is_refused(spec):
    spec.given().when(topup("cle_1", 0)).raises(InvalidRequest)


def test_topup_through_an_unknown_method_is_refused(spec):
    spec.given().when(topup("cle_1", 10, method_id="pm_x")).raises(NotFound)


def test_methods_add_update_remove_keep_the_record(spec):
    added = ledger.decide(add_method(), ledger.INITIAL)
    assert isinstance(added[0], PaymentMethodAdded) and added[0].enabled
    state = spec.given(*added).state()
    off = ledger.decide(UpdateMethod(method_id="pm_1", changes={"enabled": False}, now=T0 + 1),
                        state)  # fmt: skip
    assert isinstance(off[0], PaymentMethodUpdated)
    assert (off[0].enabled, off[0].disabled_at, off[0].changed) == (False, T0 + 1, ["enabled"])
    state = spec.given(*added, *off).state()
    same = UpdateMethod(method_id="pm_1", changes={"enabled": False}, now=T0 + 2)
    assert ledger.decide(same, state) == []
    removed = ledger.decide(RemoveMethod(method_id="pm_1", now=T0 + 3), state)
    assert isinstance(removed[0], PaymentMethodRemoved) and removed[0].removed_at == T0 + 3
    state = spec.given(*added, *off, *removed).state()
    assert state.methods["pm_1"].removed_at == T0 + 3
    assert ledger.decide(RemoveMethod(method_id="pm_1", now=T0 + 4), state) == []
    spec.given(*added, *off, *removed).when(
        UpdateMethod(method_id="pm_1", changes={"enabled": True}, now=T0 + 5)
    ).raises(NotFound)
