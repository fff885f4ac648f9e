"""The Credential aggregate: a user's password verifier and whether the email address that is
its username has been verified. One `credential:<user_id>` stream per user, in the token
service's store (the directory owns the user itself; DESIGN.md 2). The deciders see only sealed
hashes: hashing, sealing and the clock belong to the caller."""

from __future__ import annotations

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.credentials import (
    PasswordRehashed,
    UserEmailVerified,
    UserLoginLinkConsumed,
    UserLoginLinkRequested,
    UserPasswordChanged,
    UserPasswordReset,
    UserPasswordResetRequested,
    UserVerifierCreated,
)
from authpi.token.domain.credential_commands import (
    ConsumeLoginLink,
    CredentialCommand,
    RehashPassword,
    RequestLoginLink,
    RequestPasswordReset,
    ResetPassword,
    SetPassword,
    VerifyEmail,
)


class Credential(msgspec.Struct, frozen=True, kw_only=True):
    verifier_id: str | None = None  # None: no password yet
    email_verified: bool = False


INITIAL = Credential()


def decide(cmd: CredentialCommand, state: Credential) -> list[Event]:
    match cmd:
        case SetPassword():
            return [_password_set(cmd, state)]
        case RehashPassword():
            if state.verifier_id is None:
                return []
            return [
                PasswordRehashed(
                    issuer_id=cmd.issuer_id, user_id=cmd.user_id, verifier_id=state.verifier_id,
                    sealed_hash=cmd.sealed_hash, rehashed_at=cmd.at,
                )
            ]  # fmt: skip
        case RequestPasswordReset():
            return [
                UserPasswordResetRequested(
                    issuer_id=cmd.issuer_id, user_id=cmd.user_id, expires_at=cmd.expires_at,
                    requested_at=cmd.at,
                )
            ]  # fmt: skip
        case ResetPassword():
            reset = UserPasswordReset(
                issuer_id=cmd.issuer_id, user_id=cmd.user_id,
                verifier_id=state.verifier_id or cmd.verifier_id, sealed_hash=cmd.sealed_hash,
                reset_at=cmd.at,
            )  # fmt: skip
            verified = _verified(cmd.issuer_id, cmd.user_id, cmd.email_username, state, cmd.at)
            return [reset, *verified]
        case RequestLoginLink():
            return [
                UserLoginLinkRequested(
                    issuer_id=cmd.issuer_id, user_id=cmd.user_id, client_id=cmd.client_id,
                    expires_at=cmd.expires_at, requested_at=cmd.at,
                )
            ]  # fmt: skip
        case ConsumeLoginLink():
            consumed = UserLoginLinkConsumed(
                issuer_id=cmd.issuer_id, user_id=cmd.user_id, session_id=cmd.session_id,
                consumed_at=cmd.at,
            )  # fmt: skip
            verified = _verified(cmd.issuer_id, cmd.user_id, cmd.email_username, state, cmd.at)
            return [consumed, *verified]
        case VerifyEmail():
            return _verified(cmd.issuer_id, cmd.user_id, True, state, cmd.at)


def _password_set(cmd: SetPassword, state: Credential) -> Event:
    if state.verifier_id is None:
        return UserVerifierCreated(
            issuer_id=cmd.issuer_id, user_id=cmd.user_id, verifier_id=cmd.verifier_id,
            sealed_hash=cmd.sealed_hash, created_at=cmd.at,
        )  # fmt: skip
    return UserPasswordChanged(
        issuer_id=cmd.issuer_id, user_id=cmd.user_id, verifier_id=state.verifier_id,
        sealed_hash=cmd.sealed_hash, changed_at=cmd.at,
    )  # fmt: skip


def _verified(
    issuer_id: str, user_id: str, email_username: bool, state: Credential, at: int
) -> list[Event]:
    """A mailed link that worked proves control of the address, once."""
    if not email_username or state.email_verified:
        return []
    return [UserEmailVerified(issuer_id=issuer_id, user_id=user_id, verified_at=at)]


def evolve(state: Credential, event: Event) -> Credential:
    match event:
        case UserVerifierCreated() | UserPasswordReset():
            return msgspec.structs.replace(state, verifier_id=event.verifier_id)
        case UserEmailVerified():
            return msgspec.structs.replace(state, email_verified=True)
        case _:
            return state
