"""Request and response Structs of the billing routes (platform.md 5.3-5.5, contract 5.3)."""

from __future__ import annotations

import re
from typing import Annotated

import msgspec

from authpi.billing.queries.ledger import EntryRow, UsageLineRow
from authpi.billing.queries.methods import MethodRow
from authpi.contracts.billing import MU
from authpi.errors import FieldProblem, InvalidRequest

UNSET = msgspec.UNSET
Unset = msgspec.UnsetType
MAX_TOPUP = 1_000_000_000  # $1,000 per challenge
Amount = Annotated[int, msgspec.Meta(ge=1, le=MAX_TOPUP)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]

_CAIP2 = re.compile(r"^eip155:[1-9][0-9]{0,17}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


class EntryOut(msgspec.Struct, frozen=True, kw_only=True):
    """`CreditLedgerEntry` (platform.md 5.4)."""

    id: str
    type: str
    amount: int = msgspec.field(name=f"amount_{MU}usd")
    balance_after: int = msgspec.field(name=f"balance_after_{MU}usd")
    operation: str | None
    reference: str | None
    related_entry_id: str | None
    expires_at: int | None
    created_at: int
    dimension: str | None
    config_version: str | None
    external_reference: str | None
    settled_total: int | None = msgspec.field(name=f"settled_total_{MU}usd")

    @classmethod
    def of(cls, row: EntryRow) -> EntryOut:
        return cls(
            id=row.entry_id, type=row.type, amount=row.amount, balance_after=row.balance_after,
            operation=row.operation, reference=row.reference,
            related_entry_id=row.related_entry_id, expires_at=row.expires_at,
            created_at=row.created_at, dimension=row.dimension,
            config_version=row.config_version, external_reference=row.external_reference,
            settled_total=row.settled_total,
        )  # fmt: skip


class TopupOut(msgspec.Struct, frozen=True, kw_only=True):
    balance: int = msgspec.field(name=f"balance_{MU}usd")
    entry_id: str
    duplicate: bool
    payment_reference: str


class UsageLine(msgspec.Struct, frozen=True, kw_only=True):
    """`UsageDimensionLine`: `amount_μusd` is what the lines charged (before the usage credit),
    `count` the operations they cover, `line_count` the ledger entries (one per hour)."""

    dimension: str
    operation: str | None
    config_version: str | None
    line_count: int
    amount: int = msgspec.field(name=f"amount_{MU}usd")
    count: int

    @classmethod
    def of(cls, row: UsageLineRow) -> UsageLine:
        return cls(
            dimension=row.dimension, operation=row.operation, config_version=row.config_version,
            line_count=row.line_count, amount=row.amount, count=row.count,
        )  # fmt: skip


class UsageOut(msgspec.Struct, frozen=True, kw_only=True):
    period: str
    lines: list[UsageLine]


class EstimateOut(msgspec.Struct, frozen=True, kw_only=True):
    """`AccountUsageEstimate`: the current period's charges so far, closed hours and open ones
    priced at the current rate card, and the usage credit that applies before them."""

    period: str
    as_of: int
    trial: bool
    billing_profile: str
    estimate: bool
    total: int = msgspec.field(name=f"total_{MU}usd")
    lines: list[UsageLine]
    usage_credit: int = msgspec.field(name=f"usage_credit_{MU}usd")


class InvoiceOut(msgspec.Struct, frozen=True, kw_only=True):
    """`AccountInvoice`: a prepaid account is charged from its balance, so each period is a
    statement with no payment processor behind it (`external_reference` and the links null)."""

    period: str
    status: str | None
    total: int | None = msgspec.field(name=f"total_{MU}usd")
    external_reference: str | None = None
    hosted_invoice_url: str | None = None
    invoice_pdf: str | None = None


class MethodOut(msgspec.Struct, frozen=True, kw_only=True):
    """The x402 payment method object (platform.md 5.3)."""

    id: str
    type: str
    enabled: bool
    network: str
    asset: str
    payer: str | None
    topup_amount: int = msgspec.field(name=f"topup_amount_{MU}usd")
    created_at: int
    disabled_at: int | None
    removed_at: int | None

    @classmethod
    def of(cls, row: MethodRow) -> MethodOut:
        return cls(
            id=row.id, type=row.type, enabled=row.enabled, network=row.network, asset=row.asset,
            payer=row.payer, topup_amount=row.topup_amount, created_at=row.created_at,
            disabled_at=row.disabled_at, removed_at=row.removed_at,
        )  # fmt: skip


class MethodCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    type: str = "x402"
    network: Text
    asset: Text
    payer: Text | None = None
    topup_amount: Amount = msgspec.field(default=1_000_000, name=f"topup_amount_{MU}usd")
    enabled: bool = True


class MethodPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    network: Text | Unset = UNSET
    asset: Text | Unset = UNSET
    payer: Text | Unset | None = UNSET
    topup_amount: Amount | Unset = msgspec.field(default=UNSET, name=f"topup_amount_{MU}usd")
    enabled: bool | Unset = UNSET


def _bad(field: str, message: str) -> InvalidRequest:
    problem = FieldProblem(field=field, code="invalid_value", message=message)
    return InvalidRequest(message, reason=f"payment_method.{field}", fields=[problem])


def check_network(network: str) -> str:
    if not _CAIP2.match(network):
        raise _bad("network", "network must be a CAIP-2 EVM chain id, e.g. eip155:8453")
    return network


def check_asset(asset: str) -> str:
    if not _ADDRESS.match(asset):
        raise _bad("asset", "asset must be a 0x token contract address")
    return asset


def check_payer(payer: str | None, network: str) -> str | None:
    """A CAIP-10 account on the method's network (platform.md 5.3)."""
    if payer is None:
        return None
    chain, _, address = payer.rpartition(":")
    if chain != network or not _ADDRESS.match(address):
        raise _bad("payer", f"payer must be a CAIP-10 account on {network}, e.g. {network}:0x…")
    return payer
