"""The TOTP verifier aggregate (core-api.md 3.9 sub-resources; RFC 6238): one stream per verifier,
named by its `vrf_` id. It holds the last time step accepted and the keyed digests of the backup
codes, so that accepting a code and using it up happen in one append: a TOTP code is never
accepted twice, nor one of an earlier step than a code already accepted (RFC 6238 5.2), and a
backup code works once. Two concurrent uses of one code meet on the stream version: the second is
decided again on the first's result and refused.

Failed attempts are not recorded here (they would let anyone grow the stream): they are
`auth-attempt` streams of their own, and the lockout counts them (caches.lockouts)."""

from __future__ import annotations

import hmac

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.credentials import UserVerifierCreated
from authpi.contracts.mfa import (
    UserMfaBackupCodesLow,
    UserMfaBackupCodesRegenerated,
    UserMfaFactorCreated,
    UserMfaFactorDeleted,
    UserMfaVerificationSucceeded,
    UserVerifierDeleted,
    UserVerifierUpdated,
)
from authpi.errors import Conflict, NotFound, Unprocessable
from authpi.token.domain.mfa_commands import (
    CreateTotpVerifier,
    DeleteVerifier,
    RegenerateBackupCodes,
    UpdateVerifier,
    UseBackupCode,
    UseTotpCode,
    VerifierCommand,
)
from authpi.web.etag import check_if_match, etag_of, strictly_after

TOTP = "totp"
STATUSES = ("active", "disabled")
LOW_BACKUP_CODES = 3  # `user.mfa.backup-codes.low` when the codes left fall below this


class CodeRefused(Conflict):
    """The code is not accepted: `reason` is `mfa.code_reused` (a TOTP step already used, or an
    earlier one) or `mfa.invalid_code` (no unused backup code has this digest)."""


class FactorDisabled(Conflict):
    """The verifier is disabled: no code of it is accepted."""


class Absent(msgspec.Struct, frozen=True):
    pass


class Live(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    issuer_id: str
    user_id: str
    name: str
    status: str
    time_step: int
    backup_codes: list[str | None]  # None: used
    created_at: int
    updated_at: int | None = None

    @property
    def etag(self) -> str:
        return etag_of(self.created_at, self.updated_at)

    @property
    def remaining(self) -> int:
        return sum(1 for c in self.backup_codes if c is not None)

    def changed_at(self, now: int) -> int:
        return strictly_after(now, self.updated_at or self.created_at)


class Deleted(msgspec.Struct, frozen=True):
    id: str


Verifier = Absent | Live | Deleted
INITIAL: Verifier = Absent()


def decide(cmd: VerifierCommand, state: Verifier) -> list[Event]:
    match cmd, state:
        case CreateTotpVerifier(), Absent():
            return _created(cmd)
        case CreateTotpVerifier(), _:
            raise Conflict("the verifier already exists", reason="verifier.exists")
        case _, Live() if state.user_id == cmd.user_id:
            check_if_match(cmd.if_match, state.etag)
            return _on_live(cmd, state)
        case _:
            raise NotFound("no such verifier", reason="verifier.not_found")


def _on_live(cmd: VerifierCommand, v: Live) -> list[Event]:
    match cmd:
        case UpdateVerifier():
            return _updated(cmd, v)
        case DeleteVerifier():
            at = v.changed_at(cmd.now)
            common = {"issuer_id": v.issuer_id, "user_id": v.user_id, "verifier_id": v.id}
            return [
                UserMfaFactorDeleted(factor_type=TOTP, deleted_at=at, **common),
                UserVerifierDeleted(verifier_type=TOTP, deleted_at=at, **common),
            ]
        case RegenerateBackupCodes():
            return [
                UserMfaBackupCodesRegenerated(
                    issuer_id=v.issuer_id, user_id=v.user_id, verifier_id=v.id,
                    count=len(cmd.backup_codes), backup_codes=cmd.backup_codes,
                    regenerated_at=v.changed_at(cmd.now),
                )
            ]  # fmt: skip
        case UseTotpCode():
            _require_active(v)
            if cmd.time_step <= v.time_step:
                raise CodeRefused("this code was already used", reason="mfa.code_reused")
            return [
                UserMfaVerificationSucceeded(
                    issuer_id=v.issuer_id, user_id=v.user_id, verifier_id=v.id,
                    factor_type=TOTP, time_step=cmd.time_step, remaining=v.remaining,
                    client_id=cmd.client_id, at=v.changed_at(cmd.now),
                )
            ]  # fmt: skip
        case UseBackupCode():
            _require_active(v)
            return _backup_code_used(cmd, v)
        case CreateTotpVerifier():
            raise Conflict("the verifier already exists", reason="verifier.exists")


def _require_active(v: Live) -> None:
    if v.status != "active":
        raise FactorDisabled("this verifier is disabled", reason="mfa.disabled")


def _created(cmd: CreateTotpVerifier) -> list[Event]:
    return [
        # The password verifier's event type, without a password: its sealed hash stays empty.
        UserVerifierCreated(
            issuer_id=cmd.issuer_id, user_id=cmd.user_id, verifier_id=cmd.verifier_id,
            verifier_type=TOTP, name=cmd.name, sealed_hash="", created_at=cmd.now,
        ),
        UserMfaFactorCreated(
            issuer_id=cmd.issuer_id, user_id=cmd.user_id, verifier_id=cmd.verifier_id,
            factor_type=TOTP, name=cmd.name, sealed_secret=cmd.sealed_secret,
            time_step=cmd.time_step, backup_codes=cmd.backup_codes, created_at=cmd.now,
        ),
    ]  # fmt: skip


def _updated(cmd: UpdateVerifier, v: Live) -> list[Event]:
    if cmd.status is not None and cmd.status not in STATUSES:
        raise Unprocessable(
            f"status must be one of {', '.join(STATUSES)}", reason="verifier.status"
        )
    changed: list[str] = []
    if cmd.name is not None and cmd.name != v.name:
        changed.append("name")
    if cmd.status is not None and cmd.status != v.status:
        changed.append("status")
    if not changed:
        return []
    return [
        UserVerifierUpdated(
            issuer_id=v.issuer_id, user_id=v.user_id, verifier_id=v.id, verifier_type=TOTP,
            changed=changed, name=cmd.name if "name" in changed else None,
            status=cmd.status if "status" in changed else None,
            updated_at=v.changed_at(cmd.now),
        )
    ]  # fmt: skip


def _backup_code_used(cmd: UseBackupCode, v: Live) -> list[Event]:
    index = None
    for i, digest in enumerate(v.backup_codes):  # every entry compared: constant work
        if digest is not None and hmac.compare_digest(digest, cmd.digest):
            index = i
    if index is None:
        raise CodeRefused("this backup code is not valid", reason="mfa.invalid_code")
    left = v.remaining - 1
    at = v.changed_at(cmd.now)
    events: list[Event] = [
        UserMfaVerificationSucceeded(
            issuer_id=v.issuer_id, user_id=v.user_id, verifier_id=v.id,
            factor_type="backup_code", backup_code=index, remaining=left,
            client_id=cmd.client_id, at=at,
        )
    ]  # fmt: skip
    if left < LOW_BACKUP_CODES <= v.remaining:
        events.append(
            UserMfaBackupCodesLow(
                issuer_id=v.issuer_id, user_id=v.user_id, verifier_id=v.id, remaining=left, at=at
            )
        )
    return events


def evolve(state: Verifier, event: Event) -> Verifier:
    match state, event:
        case Absent(), UserMfaFactorCreated():
            return Live(
                id=event.verifier_id, issuer_id=event.issuer_id, user_id=event.user_id,
                name=event.name, status="active", time_step=event.time_step,
                backup_codes=list(event.backup_codes), created_at=event.created_at,
            )  # fmt: skip
        case Live(), UserVerifierUpdated():
            return msgspec.structs.replace(
                state,
                name=event.name if event.name is not None else state.name,
                status=event.status if event.status is not None else state.status,
                updated_at=event.updated_at,
            )
        case Live(), UserMfaBackupCodesRegenerated():
            return msgspec.structs.replace(
                state, backup_codes=list(event.backup_codes), updated_at=event.regenerated_at
            )
        case Live(), UserMfaVerificationSucceeded():
            return _used(state, event)
        case Live(), UserVerifierDeleted():
            return Deleted(state.id)
        case _:
            return state


def _used(v: Live, event: UserMfaVerificationSucceeded) -> Live:
    codes = v.backup_codes
    if event.backup_code is not None and 0 <= event.backup_code < len(codes):
        codes = [None if i == event.backup_code else c for i, c in enumerate(codes)]
    step = max(v.time_step, event.time_step or 0)
    return msgspec.structs.replace(v, time_step=step, backup_codes=codes, updated_at=event.at)
