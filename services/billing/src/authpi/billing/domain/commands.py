"""Commands of the credit ledger (internal; never published). Time, ids and the deployment's
billing mode are decided by the handler and passed in."""

from __future__ import annotations

import msgspec


class RecordTopup(msgspec.Struct, frozen=True, kw_only=True):
    entry_id: str
    amount: int
    reference: str  # the payment nonce (platform.md 5.4)
    external_reference: str | None  # the on-chain transaction hash
    method_id: str | None
    operation: str = "x402"
    now: int
    mode: str


class Grant(msgspec.Struct, frozen=True, kw_only=True):
    """A usage credit: `monthly_credit` or `trial` (platform.md 5.5), expiring at `expires_at`."""

    entry_id: str
    amount: int
    operation: str
    period: str | None = None
    expires_at: int | None
    now: int
    mode: str


class Adjust(msgspec.Struct, frozen=True, kw_only=True):
    """An operator's correction, either sign."""

    entry_id: str
    amount: int
    operation: str
    reference: str | None = None
    now: int
    mode: str


class Refund(msgspec.Struct, frozen=True, kw_only=True):
    """Money paid back for a top-up: a debit of `amount` related to that top-up."""

    entry_id: str
    amount: int
    related_entry_id: str
    external_reference: str | None = None
    now: int
    mode: str


class RecordUsage(msgspec.Struct, frozen=True, kw_only=True):
    """One closed hour of one dimension: `count` operations at `rate` μUSD each. Before it, the
    month's usage credit (`monthly_credit` > 0) is granted if that period has none yet, and a
    lapsed grant's remainder expires; `grant_id` and `expiry_id` are their entry ids."""

    entry_id: str
    dimension: str
    operation: str
    count: int
    rate: int
    config_version: str
    hour: int
    period: str
    period_end: int
    monthly_credit: int
    grant_id: str
    expiry_id: str
    now: int
    mode: str


class ExpireGrant(msgspec.Struct, frozen=True, kw_only=True):
    entry_id: str
    now: int
    mode: str


class AddMethod(msgspec.Struct, frozen=True, kw_only=True):
    method_id: str
    network: str
    asset: str
    payer: str | None
    topup_amount: int
    enabled: bool = True
    now: int


class UpdateMethod(msgspec.Struct, frozen=True, kw_only=True):
    method_id: str
    changes: dict[str, object]  # enabled, network, asset, payer, topup_amount (validated)
    now: int


class RemoveMethod(msgspec.Struct, frozen=True, kw_only=True):
    method_id: str
    now: int


LedgerCommand = (
    RecordTopup
    | Grant
    | Adjust
    | Refund
    | RecordUsage
    | ExpireGrant
    | AddMethod
    | UpdateMethod
    | RemoveMethod
)
