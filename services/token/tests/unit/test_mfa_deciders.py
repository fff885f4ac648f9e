"""The TOTP verifier and trusted-devices deciders, and the TOTP and backup-code functions: a TOTP
step is accepted once and never one at or before the last accepted (RFC 6238 5.2); a backup
code works once and a low count is reported once; disabled verifiers accept nothing; `If-Match`
is compared with the folded state; revoking all devices names exactly those revoked; a device
beyond the limit evicts the oldest. Codes are the RFC 6238 test vectors' algorithm."""

from __future__ import annotations

from typing import Any

import pytest

from authpi.contracts.credentials import UserVerifierCreated
from authpi.contracts.mfa import (
    UserDeviceRevoked,
    UserDeviceTrusted,
    UserMfaBackupCodesLow,
    UserMfaBackupCodesRegenerated,
    UserMfaFactorCreated,
    UserMfaFactorDeleted,
    UserMfaVerificationSucceeded,
    UserVerifierDeleted,
    UserVerifierUpdated,
)
from authpi.errors import Conflict, NotFound, PreconditionFailed
from authpi.testing.decider import DeciderSpec
from authpi.token.domain import totp_codes, totp_verifier, trusted_devices
from authpi.token.domain.mfa_commands import (
    CreateTotpVerifier,
    DeleteVerifier,
    RegenerateBackupCodes,
    RevokeAllDevices,
    RevokeDevice,
    TrustDevice,
    UpdateVerifier,
    UseBackupCode,
    UseTotpCode,
)
from authpi.token.domain.totp_verifier import CodeRefused, FactorDisabled

WHO = {"issuer_id": "i_1", "user_id": "usr_1"}
V = {**WHO, "verifier_id": "vrf_1"}
C = {"user_id": "usr_1", "verifier_id": "vrf_1"}  # what a command names
CODES = [f"d{i}" for i in range(10)]


def factor(**o: Any) -> UserMfaFactorCreated:
    return UserMfaFactorCreated(
        **{**V, "name": "Phone", "sealed_secret": "s", "time_step": 100, "backup_codes": CODES,
           "created_at": 1, **o}
    )  # fmt: skip


def totp_used(step: int, at: int = 10) -> UserMfaVerificationSucceeded:
    return UserMfaVerificationSucceeded(
        **V, factor_type="totp", time_step=step, remaining=10, at=at
    )


def backup_used(index: int, remaining: int, at: int = 10) -> UserMfaVerificationSucceeded:
    return UserMfaVerificationSucceeded(
        **V, factor_type="backup_code", backup_code=index, remaining=remaining, at=at
    )


@pytest.fixture
def spec() -> DeciderSpec:
    return DeciderSpec(totp_verifier)


@pytest.fixture
def devices() -> DeciderSpec:
    return DeciderSpec(trusted_devices)


def test_completed_enrolment_creates_the_verifier_and_its_factor(spec):
    cmd = CreateTotpVerifier(
        **V, name="Phone", sealed_secret="s", time_step=100, backup_codes=CODES, now=1
    )
    spec.given().when(cmd).then(
        UserVerifierCreated(**V, verifier_type="totp", name="Phone", sealed_hash="", created_at=1),
        factor(),
    )
    spec.given(factor()).when(cmd).raises(Conflict)


def test_a_later_step_is_accepted_and_remembered(spec):
    spec.given(factor()).when(UseTotpCode(**C, time_step=101, now=10)).then(totp_used(101))
    assert spec.given(factor(), totp_used(101)).state().time_step == 101


@pytest.mark.parametrize("step", [99, 100])
def test_the_enrolment_step_and_earlier_ones_are_refused(spec, step):
    error = spec.given(factor()).when(UseTotpCode(**C, time_step=step, now=10)).raises(CodeRefused)
    assert error.reason == "mfa.code_reused"  # type: ignore[attr-defined]


def test_a_step_accepted_once_is_refused_after(spec):
    spec.given(factor(), totp_used(101))
    spec.when(UseTotpCode(**C, time_step=101, now=11)).raises(CodeRefused)
    spec.when(UseTotpCode(**C, time_step=102, now=11)).then(totp_used(102, at=11))


def test_a_backup_code_works_once(spec):
    spec.given(factor()).when(UseBackupCode(**C, digest="d3", now=10)).then(backup_used(3, 9))
    error = (
        spec.given(factor(), backup_used(3, 9))
        .when(UseBackupCode(**C, digest="d3", now=11))
        .raises(CodeRefused)
    )
    assert error.reason == "mfa.invalid_code"  # type: ignore[attr-defined]
    spec.given(factor()).when(UseBackupCode(**C, digest="nope", now=10)).raises(CodeRefused)


def test_falling_below_three_backup_codes_is_reported_once(spec):
    used = [backup_used(i, 9 - i) for i in range(7)]  # 3 left
    spec.given(factor(), *used).when(UseBackupCode(**C, digest="d7", now=20)).then(
        backup_used(7, 2, at=20), UserMfaBackupCodesLow(**V, remaining=2, at=20)
    )
    spec.given(factor(), *used, backup_used(7, 2)).when(
        UseBackupCode(**C, digest="d8", now=21)
    ).then(backup_used(8, 1, at=21))


def test_regenerated_codes_replace_every_earlier_one(spec):
    new = UserMfaBackupCodesRegenerated(**V, count=2, backup_codes=["n0", "n1"], regenerated_at=5)
    spec.given(factor()).when(RegenerateBackupCodes(**C, backup_codes=["n0", "n1"], now=5)).then(
        new
    )
    spec.given(factor(), new).when(UseBackupCode(**C, digest="d0", now=6)).raises(CodeRefused)
    assert spec.given(factor(), new).state().remaining == 2


def test_a_disabled_verifier_accepts_no_code(spec):
    off = UserVerifierUpdated(
        **V, verifier_type="totp", changed=["status"], status="disabled", updated_at=5
    )
    spec.given(factor()).when(UpdateVerifier(**C, status="disabled", now=5)).then(off)
    spec.given(factor(), off)
    spec.when(UseTotpCode(**C, time_step=101, now=6)).raises(FactorDisabled)
    spec.when(UseBackupCode(**C, digest="d0", now=6)).raises(FactorDisabled)
    spec.when(UpdateVerifier(**C, status="disabled", now=7)).then()


def test_if_match_is_compared_with_the_folded_verifier(spec):
    spec.given(factor()).when(DeleteVerifier(**C, if_match='"2"', now=5)).raises(PreconditionFailed)
    spec.given(factor()).when(DeleteVerifier(**C, if_match='"1"', now=5)).then(
        UserMfaFactorDeleted(**V, deleted_at=5),
        UserVerifierDeleted(**V, verifier_type="totp", deleted_at=5),
    )


def test_another_users_verifier_is_not_found(spec):
    other = {**C, "user_id": "usr_2"}
    spec.given(factor()).when(UseTotpCode(**other, time_step=101, now=10)).raises(NotFound)
    deleted = UserVerifierDeleted(**V, verifier_type="totp", deleted_at=5)
    spec.given(factor(), deleted).when(UseTotpCode(**C, time_step=101, now=10)).raises(NotFound)


def trusted(device_id: str, at: int, expires_at: int = 10_000) -> UserDeviceTrusted:
    return UserDeviceTrusted(
        **WHO, device_id=device_id, fingerprint="f", expires_at=expires_at, trusted_at=at
    )


def test_revoke_all_names_the_devices_it_revokes(devices):
    gone = UserDeviceRevoked(**WHO, device_ids=["dev_a", "dev_b"], revoked_count=2, revoked_at=5)
    devices.given(trusted("dev_a", 1), trusted("dev_b", 2))
    devices.when(RevokeAllDevices(**WHO, now=5)).then(gone)
    devices.when(RevokeAllDevices(**WHO, if_match='"1"', now=5)).raises(PreconditionFailed)
    devices.when(RevokeAllDevices(**WHO, if_match='"2"', now=5)).then(gone)
    devices.given(trusted("dev_a", 1), trusted("dev_b", 2), gone)
    devices.when(RevokeAllDevices(**WHO, now=6)).then()


def test_revoking_one_device_keeps_the_others(devices):
    one = UserDeviceRevoked(
        **WHO, device_id="dev_a", device_ids=["dev_a"], revoked_count=1, revoked_at=5
    )
    devices.given(trusted("dev_a", 1), trusted("dev_b", 2))
    devices.when(RevokeDevice(**WHO, device_id="dev_a", now=5)).then(one)
    assert set(devices.given(trusted("dev_a", 1), trusted("dev_b", 2), one).state().devices) == {
        "dev_b"
    }
    devices.given(trusted("dev_a", 1), one).when(
        RevokeDevice(**WHO, device_id="dev_a", now=6)
    ).raises(NotFound)


def test_a_device_beyond_the_limit_evicts_the_oldest(devices):
    full = [trusted(f"dev_{i:02d}", i + 1) for i in range(trusted_devices.MAX_DEVICES)]
    cmd = TrustDevice(**WHO, device_id="dev_new", fingerprint="f", expires_at=20_000, now=100)
    devices.given(*full).when(cmd).then(
        UserDeviceRevoked(
            **WHO, device_id="dev_00", device_ids=["dev_00"], revoked_count=1, revoked_at=100
        ),
        UserDeviceTrusted(
            **WHO, device_id="dev_new", fingerprint="f", expires_at=20_000, trusted_at=100
        ),
    )


def test_totp_codes_match_their_step_within_one_step_either_side():
    secret = totp_codes.new_secret("some high-entropy input")
    now = 1_700_000_000_000
    step = totp_codes.step_at(now)
    for offset in (-1, 0, 1):
        code = totp_codes.code_at(secret, step + offset)
        assert totp_codes.matching_step(secret, code, now) == step + offset
    assert totp_codes.matching_step(secret, totp_codes.code_at(secret, step + 2), now) is None
    assert totp_codes.matching_step(secret, "12345", now) is None
    assert totp_codes.matching_step(secret, "１２３４５６", now) is None


def test_rfc_6238_test_vector():
    # RFC 6238 appendix B, SHA1, T = 59 s: 94287082 (8 digits); the secret "12345678901234567890".
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    assert totp_codes.code_at(secret, 59 // 30, digits=8) == "94287082"


def test_backup_codes_are_normalised_before_their_keyed_digest():
    code = totp_codes.backup_code("random input")
    assert len(code) == 11 and code[5] == "-"
    key = b"k" * 32
    digest = totp_codes.backup_digest(key, "vrf_1", code)
    assert totp_codes.backup_digest(key, "vrf_1", f" {code.lower().replace('-', '')} ") == digest
    assert totp_codes.backup_digest(key, "vrf_2", code) != digest
    assert totp_codes.backup_digest(b"x" * 32, "vrf_1", code) != digest
