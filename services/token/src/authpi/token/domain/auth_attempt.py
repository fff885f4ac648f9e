"""Sign-in attempts in the hosted portal: each outcome of a primary authentication
(user.verification.succeeded / failed), each failed second factor and each trusted device that
stood in for one (user.mfa.verification.*), and each replayed one-time artefact
(auth.flow.replay-attempt) is its own `auth-attempt:<uuid>` stream of one event, so that a
user's credential and verifier streams do not grow with every attempt and an unknown username
(which has no credential) is recorded the same way."""

from __future__ import annotations

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.credentials import (
    AuthFlowReplayAttempt,
    UserVerificationFailed,
    UserVerificationSucceeded,
)
from authpi.contracts.mfa import UserMfaVerificationFailed, UserMfaVerificationSucceeded
from authpi.token.domain.credential_commands import (
    AttemptCommand,
    RecordMfaAttempt,
    RecordReplay,
    RecordVerification,
)


class Unrecorded(msgspec.Struct, frozen=True):
    pass


class Recorded(msgspec.Struct, frozen=True):
    pass


Attempt = Unrecorded | Recorded
INITIAL: Attempt = Unrecorded()


def decide(cmd: AttemptCommand, state: Attempt) -> list[Event]:
    if isinstance(state, Recorded):
        return []  # an attempt is recorded once
    match cmd:
        case RecordVerification(succeeded=True, user_id=str() as user_id):
            return [
                UserVerificationSucceeded(
                    issuer_id=cmd.issuer_id, user_id=user_id, method=cmd.method,
                    verifier_id=cmd.verifier_id, client_id=cmd.client_id, at=cmd.at,
                )
            ]  # fmt: skip
        case RecordVerification():
            return [
                UserVerificationFailed(
                    issuer_id=cmd.issuer_id, user_id=cmd.user_id, method=cmd.method,
                    reason=cmd.reason or "invalid_credentials", username_hash=cmd.username_hash,
                    at=cmd.at,
                )
            ]  # fmt: skip
        case RecordReplay():
            return [
                AuthFlowReplayAttempt(
                    issuer_id=cmd.issuer_id, client_id=cmd.client_id, flow=cmd.flow,
                    artifact=cmd.artifact, at=cmd.at,
                )
            ]  # fmt: skip
        case RecordMfaAttempt(succeeded=True):
            return [
                UserMfaVerificationSucceeded(
                    issuer_id=cmd.issuer_id, user_id=cmd.user_id, verifier_id=cmd.verifier_id,
                    factor_type=cmd.factor_type, device_id=cmd.device_id,
                    client_id=cmd.client_id, at=cmd.at,
                )
            ]  # fmt: skip
        case RecordMfaAttempt():
            return [
                UserMfaVerificationFailed(
                    issuer_id=cmd.issuer_id, user_id=cmd.user_id, verifier_id=cmd.verifier_id,
                    factor_type=cmd.factor_type, reason=cmd.reason or "invalid_code", at=cmd.at,
                )
            ]  # fmt: skip


def evolve(state: Attempt, event: Event) -> Attempt:
    match event:
        case (
            UserVerificationSucceeded() | UserVerificationFailed() | AuthFlowReplayAttempt()
            | UserMfaVerificationSucceeded() | UserMfaVerificationFailed()
        ):  # fmt: skip
            return Recorded()
        case _:
            return state
