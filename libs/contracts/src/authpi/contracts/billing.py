"""Events owned by the billing service (platform.md 5, 6.3): the account's credit ledger and its
payment methods, one aggregate per account so that a top-up and the method it names are decided
together ("stored atomically with the ledger", 5.2). Amounts are integer μUSD.

`credit-ledger.entry-recorded` is the ledger itself (every entry of 5.4, usage included); it is
internal. `account.credits.updated` follows every balance change except usage, and
`account.credits.depleted` the crossing from > 0 to <= 0 (5.10): those two are public. Payment
methods are internal events carrying the method's public object (5.3).

Also here: what the gateway and the Payments side (x402) exchange with the ledger without
importing the billing service (`Settlement`, `TopupResult`, `Challenge`, `PaymentOutcome`,
the `Payments` protocol)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import msgspec

from authpi.contracts.base import Event

MU = "\u03bc"
ENTRY_TYPES = ("topup", "grant", "usage", "adjustment", "refund", "expiry")
DIMENSIONS = ("human_auth", "machine_auth", "api_key_verification", "identity_lifecycle")


class LedgerEntryRecorded(Event, frozen=True, kw_only=True, tag="credit-ledger.entry-recorded"):
    """One ledger entry (platform.md 5.4): `amount` is signed, `balance_after` the account's
    balance once it is applied. `count` is the number of metered operations of a usage entry;
    `method_id` the payment method a top-up came through; `period` the month (YYYY-MM) a grant
    covers or a usage hour belongs to; `hour` the usage hour's start (Unix ms)."""

    entry_id: str
    entry_type: str
    amount: int = msgspec.field(name=f"amount_{MU}usd")
    balance_after: int = msgspec.field(name=f"balance_after_{MU}usd")
    operation: str | None = None
    reference: str | None = None
    related_entry_id: str | None = None
    expires_at: int | None = None
    dimension: str | None = None
    config_version: str | None = None
    external_reference: str | None = None
    settled_total: int | None = msgspec.field(default=None, name=f"settled_total_{MU}usd")
    count: int | None = None
    method_id: str | None = None
    period: str | None = None
    hour: int | None = None
    created_at: int


class AccountCreditsUpdated(Event, frozen=True, kw_only=True, tag="account.credits.updated"):
    """The balance changed by a top-up, grant, adjustment, refund or expiry (platform.md 6.3)."""

    entry_id: str
    entry_type: str
    amount: int = msgspec.field(name=f"amount_{MU}usd")
    balance: int = msgspec.field(name=f"balance_{MU}usd")
    payment_reference: str | None = None


class AccountCreditsDepleted(Event, frozen=True, kw_only=True, tag="account.credits.depleted"):
    """The balance crossed from > 0 to <= 0 (platform.md 5.10), once per crossing."""

    balance: int = msgspec.field(name=f"balance_{MU}usd")
    billing_mode: str


class PaymentMethodSnapshot(Event, frozen=True, kw_only=True):
    """The x402 payment method object (platform.md 5.3)."""

    id: str
    kind: str = "x402"  # the method object's `type` (the event's own `type` is its tag)
    enabled: bool
    network: str
    asset: str
    payer: str | None = None
    topup_amount: int = msgspec.field(name=f"topup_amount_{MU}usd")
    created_at: int
    disabled_at: int | None = None
    removed_at: int | None = None


class PaymentMethodAdded(
    PaymentMethodSnapshot, frozen=True, kw_only=True, tag="payment-method.added"
):
    pass


class PaymentMethodUpdated(
    PaymentMethodSnapshot, frozen=True, kw_only=True, tag="payment-method.updated"
):
    changed: list[str]


class PaymentMethodRemoved(
    PaymentMethodSnapshot, frozen=True, kw_only=True, tag="payment-method.removed"
):
    """Removal keeps the record (`removed_at` set) for the ledger's references."""


BillingEvent = (
    LedgerEntryRecorded
    | AccountCreditsUpdated
    | AccountCreditsDepleted
    | PaymentMethodAdded
    | PaymentMethodUpdated
    | PaymentMethodRemoved
)


class Settlement(msgspec.Struct, frozen=True, kw_only=True):
    """A payment settled on chain: `value` in token base units (6 decimals = μUSD)."""

    network: str
    asset: str
    payer: str
    pay_to: str
    value: int
    nonce: str
    tx_hash: str
    settled_at: int


class TopupResult(msgspec.Struct, frozen=True, kw_only=True):
    balance: int = msgspec.field(name=f"balance_{MU}usd")
    entry_id: str
    duplicate: bool
    payment_reference: str


class Challenge(msgspec.Struct, frozen=True, kw_only=True):
    """A 402 challenge (platform.md 5.6): the v2 `PAYMENT-REQUIRED` header value and the v1
    requirements object that goes into the JSON body (`x402Version`, `accepts`)."""

    header_v2: str
    body_v1: dict[str, Any]


class PaymentOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What paying a retried request gave: the top-up, the settlement header to add (name,
    value), or the error to answer instead (an AuthpiError)."""

    ok: bool
    topup: TopupResult | None = None
    response_header: tuple[str, str] | None = None
    error: Any = None


@runtime_checkable
class Payments(Protocol):
    """x402 verification and settlement (platform.md 5.6-5.9), served by the billing service and
    reached by the gateway through the host's wiring."""

    async def challenge(self, account_id: str, resource_url: str) -> Challenge: ...

    async def pay(
        self, account_id: str, headers: Mapping[str, str], resource_url: str
    ) -> PaymentOutcome: ...
