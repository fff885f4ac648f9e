"""Events of a user's second factors and trusted devices, owned by the token service with the
rest of the user's credentials (DESIGN.md 2; platform.md 6.3: user.verifier.*, user.mfa.*,
user.device.*). A TOTP verifier is created with `user.verifier.created` (contracts.credentials,
`verifier_type` "totp") followed by `user.mfa.factor-created`, which carries what checking a code
needs.

No secret in clear: the TOTP secret is sealed (AES-GCM under a key derived from the KEK, bound to
the verifier and user ids), backup codes and trusted-device cookies are keyed digests only.
Public renderings keep none of these fields (webhook `public_events` allow-lists)."""

from __future__ import annotations

from authpi.contracts.base import Event


class UserVerifierUpdated(Event, frozen=True, kw_only=True, tag="user.verifier.updated"):
    """A verifier was renamed or enabled/disabled."""

    issuer_id: str
    user_id: str
    verifier_id: str
    verifier_type: str  # the spec's `type`, renamed: `type` is the event tag
    changed: list[str]
    name: str | None = None
    status: str | None = None  # active | disabled
    updated_at: int


class UserVerifierDeleted(Event, frozen=True, kw_only=True, tag="user.verifier.deleted"):
    issuer_id: str
    user_id: str
    verifier_id: str
    verifier_type: str
    deleted_at: int


class UserMfaFactorCreated(Event, frozen=True, kw_only=True, tag="user.mfa.factor-created"):
    """A TOTP factor confirmed with a first code (RFC 6238): its sealed secret, the time step of
    that code (never accepted again) and the keyed digests of its backup codes."""

    issuer_id: str
    user_id: str
    verifier_id: str
    factor_type: str = "totp"
    name: str
    sealed_secret: str
    algorithm: str = "SHA1"
    digits: int = 6
    period: int = 30
    time_step: int
    backup_codes: list[str]  # HMAC-SHA256 digests, in issue order
    created_at: int


class UserMfaFactorDeleted(Event, frozen=True, kw_only=True, tag="user.mfa.factor-deleted"):
    issuer_id: str
    user_id: str
    verifier_id: str
    factor_type: str = "totp"
    deleted_at: int


class UserMfaBackupCodesRegenerated(
    Event, frozen=True, kw_only=True, tag="user.mfa.backup-codes.regenerated"
):
    """A new set of backup codes replaces every earlier one."""

    issuer_id: str
    user_id: str
    verifier_id: str
    count: int
    backup_codes: list[str]  # HMAC-SHA256 digests
    regenerated_at: int


class UserMfaBackupCodesLow(Event, frozen=True, kw_only=True, tag="user.mfa.backup-codes.low"):
    issuer_id: str
    user_id: str
    verifier_id: str
    remaining: int
    at: int


class UserMfaVerificationSucceeded(
    Event, frozen=True, kw_only=True, tag="user.mfa.verification.succeeded"
):
    """A second factor passed: a TOTP code (its `time_step` is used up), a backup code (its
    index is used up) or a trusted device (`device_id`)."""

    issuer_id: str
    user_id: str
    verifier_id: str | None = None
    factor_type: str  # totp | backup_code | trusted_device
    time_step: int | None = None
    backup_code: int | None = None
    remaining: int | None = None  # backup codes left
    device_id: str | None = None
    client_id: str | None = None
    at: int


class UserMfaVerificationFailed(
    Event, frozen=True, kw_only=True, tag="user.mfa.verification.failed"
):
    issuer_id: str
    user_id: str
    verifier_id: str | None = None
    factor_type: str  # totp | backup_code
    reason: str  # invalid_code | code_reused | locked
    at: int


class UserDeviceTrusted(Event, frozen=True, kw_only=True, tag="user.device.trusted"):
    """A device remembered for MFA. `token_sha256` is the digest of the secret in the device's
    cookie (set by the portal); a device trusted through the Core API has none."""

    issuer_id: str
    user_id: str
    device_id: str
    fingerprint: str
    name: str | None = None
    user_agent: str | None = None
    token_sha256: str | None = None
    expires_at: int
    trusted_at: int


class UserDeviceRevoked(Event, frozen=True, kw_only=True, tag="user.device.revoked"):
    """One device (`device_id`) or all of a user's devices (`device_ids`) are no longer
    trusted."""

    issuer_id: str
    user_id: str
    device_id: str | None = None
    device_ids: list[str]
    revoked_count: int
    revoked_at: int


VerifierEvent = (
    UserVerifierUpdated
    | UserVerifierDeleted
    | UserMfaFactorCreated
    | UserMfaFactorDeleted
    | UserMfaBackupCodesRegenerated
    | UserMfaBackupCodesLow
    | UserMfaVerificationSucceeded
)
DeviceEvent = UserDeviceTrusted | UserDeviceRevoked
MfaEvent = VerifierEvent | DeviceEvent | UserMfaVerificationFailed
