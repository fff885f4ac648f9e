"""The Account aggregate: the customer's billing and administrative entity (core-api.md 3.2)."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.directory import AccountCreated, AccountUpdated
from authpi.directory.domain.commands import CreateAccount
from authpi.errors import Conflict


class Absent(msgspec.Struct, frozen=True):
    pass


class Open(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    org_id: str
    name: str
    owner_user_id: str | None
    metadata: dict[str, Any]


Account = Absent | Open
INITIAL: Account = Absent()
AccountCommand = CreateAccount


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
    raise Conflict("the account already exists", reason="account.exists")


def evolve(state: Account, event: Event) -> Account:
    match state, event:
        case Absent(), AccountCreated():
            return Open(
                id=event.id,
                org_id=event.org_id,
                name=event.name,
                owner_user_id=event.owner_user_id,
                metadata=event.metadata,
            )
        case Open(), AccountUpdated():
            return msgspec.structs.replace(
                state,
                name=event.name if "name" in event.changed and event.name else state.name,
                owner_user_id=event.owner_user_id or state.owner_user_id,
            )
    return state
