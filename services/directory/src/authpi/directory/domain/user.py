"""The User aggregate. PII arrives already sealed under the user's data key; the decider only
sees ciphertext and the username hash."""

from __future__ import annotations

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.directory import UserCreated, UserDeleted
from authpi.directory.domain.commands import CreateUser
from authpi.errors import Conflict


class Absent(msgspec.Struct, frozen=True):
    pass


class Present(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    issuer_id: str
    status: str


class Deleted(msgspec.Struct, frozen=True):
    id: str


User = Absent | Present | Deleted
INITIAL: User = Absent()
UserCommand = CreateUser


def decide(cmd: UserCommand, state: User) -> list[Event]:
    match cmd, state:
        case CreateUser(), Absent():
            return [
                UserCreated(
                    id=cmd.user_id,
                    issuer_id=cmd.issuer_id,
                    username_hash=cmd.username_hash,
                    pii=cmd.pii,
                    method=cmd.method,
                    region=cmd.region,
                    store_id=cmd.store_id,
                    created_at=cmd.now,
                )
            ]
    raise Conflict("the user already exists", reason="user.exists")


def evolve(state: User, event: Event) -> User:
    match state, event:
        case Absent(), UserCreated():
            return Present(id=event.id, issuer_id=event.issuer_id, status=event.status)
        case Present(), UserDeleted():
            return Deleted(state.id)
    return state
