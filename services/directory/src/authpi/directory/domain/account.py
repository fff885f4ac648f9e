"""The Account aggregate: the customer's billing and administrative entity (core-api.md 3.2).
Updates compare `If-Match` against the folded state and emit one `account.updated` snapshot of the
editable fields, with `changed` naming what moved; an update that changes nothing emits nothing.
The account's domains live in its stream too (account_domains.py decides them): each domain
change moves the account's `updated_at`, hence its ETag."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.directory import AccountCreated, AccountUpdated, DomainSnapshot
from authpi.directory.domain import account_domains
from authpi.directory.domain.account_domains import DomainCommand, Domains
from authpi.directory.domain.commands.account import (
    AddDomain,
    AssignDomain,
    CreateAccount,
    ExpireDomainClaim,
    ReleaseIssuerDomains,
    RemoveDomain,
    UnassignDomain,
    UpdateAccount,
    VerifyDomain,
)
from authpi.errors import Conflict, NotFound
from authpi.web.etag import check_if_match, etag_of, strictly_after
from authpi.web.metadata import check_metadata, merge_metadata


class Absent(msgspec.Struct, frozen=True):
    pass


class Open(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    org_id: str
    name: str
    owner_user_id: str | None
    metadata: dict[str, Any]
    description: str | None = None
    logo_url: str | None = None
    created_at: int = 0
    updated_at: int | None = None
    domains: Domains = ()

    @property
    def etag(self) -> str:
        return etag_of(self.created_at, self.updated_at)

    def changed_at(self, now: int) -> int:
        return strictly_after(now, self.updated_at or self.created_at)


Account = Absent | Open
INITIAL: Account = Absent()
AccountCommand = CreateAccount | UpdateAccount | VerifyDomain | DomainCommand

_EDITABLE = ("name", "description", "logo_url", "owner_user_id", "metadata")


def decide(cmd: AccountCommand, state: Account) -> list[Event]:
    match cmd, state:
        case CreateAccount(), Absent():
            return [
                AccountCreated(
                    id=cmd.account_id,
                    org_id=cmd.org_id,
                    name=cmd.name,
                    owner_user_id=cmd.owner_user_id,
                    metadata=cmd.metadata,
                    created_at=cmd.now,
                )
            ]
        case CreateAccount(), Open() if state.id == cmd.account_id:
            return []
        case CreateAccount(), _:
            raise Conflict("the account already exists", reason="account.exists")
        case UpdateAccount(), Open() if state.id == cmd.account_id:
            check_if_match(cmd.if_match, state.etag)
            return _update(cmd, state)
        case VerifyDomain(), Open() if state.id == cmd.account_id:
            after = account_domains.verified(cmd, state.domains, state.etag)
            return [] if after is None else [_domains_changed(state, cmd.now, after)]
        case ReleaseIssuerDomains(), Absent():
            return []
        case (
            AddDomain() | RemoveDomain() | AssignDomain() | UnassignDomain()
            | ReleaseIssuerDomains() | ExpireDomainClaim(),
            Open(),
        ) if state.id == cmd.account_id:  # fmt: skip
            at = state.changed_at(cmd.now)
            return account_domains.decide(cmd, state.id, state.domains, state.etag, at)
        case _:
            raise NotFound("no such account", reason="account.not_found")


def _update(cmd: UpdateAccount, state: Open) -> list[Event]:
    metadata = merge_metadata(state.metadata, cmd.metadata)
    check_metadata(metadata)
    after: dict[str, Any] = {
        "name": state.name if cmd.name is msgspec.UNSET else cmd.name,
        "description": state.description if cmd.description is msgspec.UNSET else cmd.description,
        "logo_url": state.logo_url if cmd.logo_url is msgspec.UNSET else cmd.logo_url,
        "owner_user_id": state.owner_user_id
        if cmd.owner_user_id is msgspec.UNSET
        else cmd.owner_user_id,
        "metadata": metadata,
    }
    changed = [name for name in _EDITABLE if after[name] != getattr(state, name)]
    domains = state.domains
    if not isinstance(cmd.domains, msgspec.UnsetType):
        domains = account_domains.edited(cmd.domains, state.domains)
    if domains != state.domains:
        changed.append("domains")
    if not changed:
        return []
    snapshot = list(domains) if "domains" in changed else None
    at = state.changed_at(cmd.now)
    return [AccountUpdated(id=state.id, changed=changed, updated_at=at, domains=snapshot, **after)]


def _domains_changed(state: Open, now: int, domains: Domains) -> AccountUpdated:
    """`account.updated` for a change of the domains only: the editable fields as they are."""
    return AccountUpdated(
        id=state.id, changed=["domains"], name=state.name, description=state.description,
        logo_url=state.logo_url, owner_user_id=state.owner_user_id, metadata=state.metadata,
        updated_at=state.changed_at(now), domains=list(domains),
    )  # fmt: skip


def evolve(state: Account, event: Event) -> Account:
    match state, event:
        case Absent(), AccountCreated():
            return Open(
                id=event.id,
                org_id=event.org_id,
                name=event.name,
                owner_user_id=event.owner_user_id,
                metadata=event.metadata,
                created_at=event.created_at,
            )
        case Open(), AccountUpdated():
            # The event is a snapshot of every editable field (name and owner never clear).
            return msgspec.structs.replace(
                state,
                name=event.name or state.name,
                description=event.description,
                logo_url=event.logo_url,
                owner_user_id=event.owner_user_id or state.owner_user_id,
                metadata=event.metadata,
                updated_at=event.updated_at,
                domains=state.domains if event.domains is None else _domains(event.domains),
            )
        case Open(), _:
            at = account_domains.at_of(event)
            if at is None:
                return state
            domains = account_domains.evolve(state.domains, event)
            return msgspec.structs.replace(state, domains=domains, updated_at=at)
        case _:
            return state


def _domains(snapshot: list[DomainSnapshot]) -> Domains:
    return tuple(snapshot)
