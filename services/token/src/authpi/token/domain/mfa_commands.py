"""Commands of a user's TOTP verifier and trusted devices (internal; never published). The caller
works out everything that needs a secret, a key or the clock: the sealed secret, the keyed digests
of backup codes and device cookies, which time step a code belongs to. The deciders stay pure."""

from __future__ import annotations

import msgspec


class CreateTotpVerifier(msgspec.Struct, frozen=True, kw_only=True):
    """Complete an enrolment: the first code proved the secret is in the user's authenticator."""

    verifier_id: str
    issuer_id: str
    user_id: str
    name: str
    sealed_secret: str
    time_step: int  # the step of the code that completed the enrolment
    backup_codes: list[str]
    now: int


class UpdateVerifier(msgspec.Struct, frozen=True, kw_only=True):
    verifier_id: str
    user_id: str
    name: str | None = None
    status: str | None = None  # active | disabled
    if_match: str | None = None
    now: int


class DeleteVerifier(msgspec.Struct, frozen=True, kw_only=True):
    verifier_id: str
    user_id: str
    if_match: str | None = None
    now: int


class RegenerateBackupCodes(msgspec.Struct, frozen=True, kw_only=True):
    verifier_id: str
    user_id: str
    backup_codes: list[str]
    if_match: str | None = None
    now: int


class UseTotpCode(msgspec.Struct, frozen=True, kw_only=True):
    """A code that matched the secret at `time_step`: accepted once, and only after every step
    accepted before it (RFC 6238 5.2)."""

    verifier_id: str
    user_id: str
    time_step: int
    client_id: str | None = None
    if_match: str | None = None
    now: int


class UseBackupCode(msgspec.Struct, frozen=True, kw_only=True):
    verifier_id: str
    user_id: str
    digest: str  # keyed digest of the presented code
    client_id: str | None = None
    if_match: str | None = None
    now: int


class TrustDevice(msgspec.Struct, frozen=True, kw_only=True):
    device_id: str
    issuer_id: str
    user_id: str
    fingerprint: str
    name: str | None = None
    user_agent: str | None = None
    token_sha256: str | None = None
    expires_at: int
    now: int


class RevokeDevice(msgspec.Struct, frozen=True, kw_only=True):
    device_id: str
    issuer_id: str
    user_id: str
    if_match: str | None = None
    now: int


class RevokeAllDevices(msgspec.Struct, frozen=True, kw_only=True):
    issuer_id: str
    user_id: str
    if_match: str | None = None
    now: int


VerifierCommand = (
    CreateTotpVerifier
    | UpdateVerifier
    | DeleteVerifier
    | RegenerateBackupCodes
    | UseTotpCode
    | UseBackupCode
)
DeviceCommand = TrustDevice | RevokeDevice | RevokeAllDevices
