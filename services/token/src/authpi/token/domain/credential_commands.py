"""Commands of the Credential aggregate and of sign-in attempts (internal; never published).
Times, ids and sealed hashes are worked out by the caller: the deciders stay pure."""

from __future__ import annotations

import msgspec


class SetPassword(msgspec.Struct, frozen=True, kw_only=True):
    """Set a password chosen by the user (signup, or a change while signed in)."""

    issuer_id: str
    user_id: str
    verifier_id: str  # used when the user had no password yet
    sealed_hash: str
    at: int


class RehashPassword(msgspec.Struct, frozen=True, kw_only=True):
    issuer_id: str
    user_id: str
    sealed_hash: str
    at: int


class RequestPasswordReset(msgspec.Struct, frozen=True, kw_only=True):
    issuer_id: str
    user_id: str
    expires_at: int
    at: int


class ResetPassword(msgspec.Struct, frozen=True, kw_only=True):
    """Complete a reset through a mailed link (which also proves control of the address)."""

    issuer_id: str
    user_id: str
    verifier_id: str  # used when the user had no password yet
    sealed_hash: str
    email_username: bool  # the username is the address the link was mailed to
    at: int


class RequestLoginLink(msgspec.Struct, frozen=True, kw_only=True):
    issuer_id: str
    user_id: str
    client_id: str | None
    expires_at: int
    at: int


class ConsumeLoginLink(msgspec.Struct, frozen=True, kw_only=True):
    issuer_id: str
    user_id: str
    session_id: str | None
    email_username: bool
    at: int


class VerifyEmail(msgspec.Struct, frozen=True, kw_only=True):
    issuer_id: str
    user_id: str
    at: int


class RecordVerification(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of one primary authentication (platform.md 6.3 user.verification.*)."""

    issuer_id: str
    user_id: str | None
    succeeded: bool
    method: str
    reason: str | None = None  # failures: invalid_credentials | user_blocked | locked
    username_hash: str | None = None
    verifier_id: str | None = None
    client_id: str | None = None
    at: int


class RecordReplay(msgspec.Struct, frozen=True, kw_only=True):
    issuer_id: str
    client_id: str | None
    flow: str
    artifact: str
    at: int


class RecordMfaAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """A second factor that failed (user.mfa.verification.failed), or a trusted device that
    stood in for one (user.mfa.verification.succeeded, `factor_type` trusted_device). A code
    that passes is recorded on its verifier's stream instead (domain.totp_verifier)."""

    issuer_id: str
    user_id: str
    succeeded: bool
    factor_type: str  # totp | backup_code | trusted_device
    reason: str | None = None  # failures: invalid_code | code_reused | locked
    verifier_id: str | None = None
    device_id: str | None = None
    client_id: str | None = None
    at: int


CredentialCommand = (
    SetPassword
    | RehashPassword
    | RequestPasswordReset
    | ResetPassword
    | RequestLoginLink
    | ConsumeLoginLink
    | VerifyEmail
)
AttemptCommand = RecordVerification | RecordReplay | RecordMfaAttempt
