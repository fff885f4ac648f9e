"""The IntegratorCredential aggregate (issue 12): an account's NATS user for the public event
stream. Issued once with its password's bcrypt digest; revoked for good. Revoking a revoked
credential changes nothing; another account's credential is not found (account isolation)."""

from __future__ import annotations

import re
from typing import assert_never

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.webhook import IntegratorCredentialIssued, IntegratorCredentialRevoked
from authpi.errors import Conflict, InvalidRequest, NotFound
from authpi.webhook.domain.commands import (
    IntegratorCredentialCommand,
    IssueIntegratorCredential,
    RevokeIntegratorCredential,
)

# A NATS subject token and a durable consumer name: no dots, wildcards or spaces, < 32 chars.
_USER = re.compile(r"^int_[A-Za-z0-9]{1,27}$")
_ACCOUNT = re.compile(r"^acc_[A-Za-z0-9]{1,64}$")
NAME_MAX = 200


class Absent(msgspec.Struct, frozen=True):
    pass


class Active(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    user: str


class Revoked(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    user: str


IntegratorCredential = Absent | Active | Revoked
INITIAL: IntegratorCredential = Absent()


def decide(cmd: IntegratorCredentialCommand, state: IntegratorCredential) -> list[Event]:
    match cmd:
        case IssueIntegratorCredential():
            return _issue(cmd, state)
        case RevokeIntegratorCredential():
            return _revoke(cmd, state)
        case _:
            assert_never(cmd)


def _issue(cmd: IssueIntegratorCredential, state: IntegratorCredential) -> list[Event]:
    if not isinstance(state, Absent):
        raise Conflict("the credential exists", reason="integrator_credential.exists")
    if not _ACCOUNT.match(cmd.account_id):
        raise InvalidRequest("account_id is not an account id", reason="integrator.bad_account")
    if not _USER.match(cmd.user):
        raise InvalidRequest("not a usable NATS user name", reason="integrator.bad_user")
    if not cmd.password_bcrypt.startswith("$2"):
        # The digest only: a password in clear must never reach an event.
        raise InvalidRequest("not a bcrypt digest", reason="integrator.not_a_digest")
    if len(cmd.name) > NAME_MAX:
        raise InvalidRequest(f"name is longer than {NAME_MAX}", reason="integrator.name_length")
    return [
        IntegratorCredentialIssued(
            id=cmd.credential_id, account_id=cmd.account_id, user=cmd.user,
            password_bcrypt=cmd.password_bcrypt, name=cmd.name, issued_at=cmd.now,
        )
    ]  # fmt: skip


def _revoke(cmd: RevokeIntegratorCredential, state: IntegratorCredential) -> list[Event]:
    match state:
        case Absent():
            raise NotFound("no such credential", reason="integrator_credential.not_found")
        case Active() | Revoked() if cmd.account_id not in (None, state.account_id):
            raise NotFound("no such credential", reason="integrator_credential.other_account")
        case Revoked():
            return []
        case Active():
            return [
                IntegratorCredentialRevoked(
                    id=state.id, account_id=state.account_id, user=state.user,
                    revoked_at=cmd.now,
                )
            ]  # fmt: skip


def evolve(state: IntegratorCredential, event: Event) -> IntegratorCredential:
    match state, event:
        case Absent(), IntegratorCredentialIssued():
            return Active(id=event.id, account_id=event.account_id, user=event.user)
        case Active(), IntegratorCredentialRevoked():
            return Revoked(id=state.id, account_id=state.account_id, user=state.user)
        case _:
            return state
