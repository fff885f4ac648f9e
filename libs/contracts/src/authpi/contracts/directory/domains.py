"""Account domain events (platform.md 6.3, core-api.md 3.3): custom host names an account adds,
verifies and assigns to one of its issuers. They live in the account's stream: the account is the
consistency boundary of the 20-domain limit, and its ETag covers its `domains`. Verification and
the `primary` flag are changes of the account object, so they are `account.updated` events with a
`domains` snapshot (the catalogue has no domain-verified type)."""

from __future__ import annotations

import msgspec

from authpi.contracts.base import Event


class DomainSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """One domain of an account, as the `AccountDomain` object shows it."""

    host: str
    verified: bool = False
    primary: bool = False
    added_at: int
    assigned_issuer_id: str | None = None
    assigned_at: int | None = None


class AccountDomainAdded(Event, frozen=True, kw_only=True, tag="account.domain.added"):
    account_id: str
    host: str
    verified: bool = False
    added_at: int


class AccountDomainRemoved(Event, frozen=True, kw_only=True, tag="account.domain.removed"):
    account_id: str
    host: str
    verified: bool = False
    removed_at: int


class AccountDomainAssigned(Event, frozen=True, kw_only=True, tag="account.domain.assigned"):
    account_id: str
    host: str
    issuer_id: str
    assigned_at: int


class AccountDomainUnassigned(Event, frozen=True, kw_only=True, tag="account.domain.unassigned"):
    account_id: str
    host: str
    issuer_id: str
    unassigned_at: int


AccountDomainEvent = (
    AccountDomainAdded | AccountDomainRemoved | AccountDomainAssigned | AccountDomainUnassigned
)
