"""The Credential decider: the first password creates the verifier, later ones change it; a
reset replaces it and, mailed to the username, verifies the address once; login links and
reset requests are recorded; verifying an address twice decides nothing. The attempt decider
records one outcome per stream."""

from __future__ import annotations

from typing import Any

import pytest

from authpi.contracts.credentials import (
    AuthFlowReplayAttempt,
    PasswordRehashed,
    UserEmailVerified,
    UserLoginLinkConsumed,
    UserLoginLinkRequested,
    UserPasswordChanged,
    UserPasswordReset,
    UserPasswordResetRequested,
    UserVerificationFailed,
    UserVerificationSucceeded,
    UserVerifierCreated,
)
from authpi.testing.decider import DeciderSpec
from authpi.token.domain import auth_attempt, credential
from authpi.token.domain.credential_commands import (
    ConsumeLoginLink,
    RecordReplay,
    RecordVerification,
    RehashPassword,
    RequestLoginLink,
    RequestPasswordReset,
    ResetPassword,
    SetPassword,
    VerifyEmail,
)

WHO = {"issuer_id": "i_1", "user_id": "usr_1"}


def created(**o: Any) -> UserVerifierCreated:
    return UserVerifierCreated(
        **{**WHO, "verifier_id": "vrf_1", "sealed_hash": "h1", "created_at": 1, **o}
    )


def verified(at: int = 5) -> UserEmailVerified:
    return UserEmailVerified(**WHO, verified_at=at)


@pytest.fixture
def spec() -> DeciderSpec:
    return DeciderSpec(credential)


@pytest.fixture
def attempts() -> DeciderSpec:
    return DeciderSpec(auth_attempt)


def test_first_password_creates_the_verifier(spec):
    spec.given().when(SetPassword(**WHO, verifier_id="vrf_1", sealed_hash="h1", at=1)).then(
        created()
    )


def test_second_password_changes_the_same_verifier(spec):
    spec.given(created()).when(
        SetPassword(**WHO, verifier_id="vrf_2", sealed_hash="h2", at=2)
    ).then(UserPasswordChanged(**WHO, verifier_id="vrf_1", sealed_hash="h2", changed_at=2))


def test_rehash_without_a_password_decides_nothing(spec):
    spec.given().when(RehashPassword(**WHO, sealed_hash="h2", at=2)).then()


def test_rehash_keeps_the_verifier(spec):
    spec.given(created()).when(RehashPassword(**WHO, sealed_hash="h2", at=2)).then(
        PasswordRehashed(**WHO, verifier_id="vrf_1", sealed_hash="h2", rehashed_at=2)
    )


def test_reset_request_is_recorded_with_its_expiry(spec):
    spec.given(created()).when(RequestPasswordReset(**WHO, expires_at=99, at=3)).then(
        UserPasswordResetRequested(**WHO, expires_at=99, requested_at=3)
    )


def test_reset_by_mail_replaces_the_hash_and_verifies_the_address(spec):
    cmd = ResetPassword(**WHO, verifier_id="vrf_9", sealed_hash="h3", email_username=True, at=4)
    spec.given(created()).when(cmd).then(
        UserPasswordReset(**WHO, verifier_id="vrf_1", sealed_hash="h3", reset_at=4),
        verified(4),
    )


def test_reset_of_a_verified_address_verifies_nothing_again(spec):
    cmd = ResetPassword(**WHO, verifier_id="vrf_9", sealed_hash="h3", email_username=True, at=6)
    spec.given(created(), verified()).when(cmd).then(
        UserPasswordReset(**WHO, verifier_id="vrf_1", sealed_hash="h3", reset_at=6)
    )


def test_reset_without_a_password_creates_the_verifier_id_given(spec):
    cmd = ResetPassword(**WHO, verifier_id="vrf_9", sealed_hash="h3", email_username=False, at=4)
    spec.given().when(cmd).then(
        UserPasswordReset(**WHO, verifier_id="vrf_9", sealed_hash="h3", reset_at=4)
    )
    assert (
        spec.given(UserPasswordReset(**WHO, verifier_id="vrf_9", sealed_hash="h3", reset_at=4))
        .state()
        .verifier_id
        == "vrf_9"
    )


def test_login_link_request_and_consumption_are_recorded(spec):
    spec.given().when(RequestLoginLink(**WHO, client_id="c_1", expires_at=50, at=3)).then(
        UserLoginLinkRequested(**WHO, client_id="c_1", expires_at=50, requested_at=3)
    )
    spec.given(verified()).when(
        ConsumeLoginLink(**WHO, session_id=None, email_username=True, at=7)
    ).then(UserLoginLinkConsumed(**WHO, consumed_at=7))


def test_consumed_login_link_verifies_an_unverified_email_username(spec):
    spec.given().when(ConsumeLoginLink(**WHO, session_id=None, email_username=True, at=7)).then(
        UserLoginLinkConsumed(**WHO, consumed_at=7), verified(7)
    )


def test_verify_email_once_then_nothing(spec):
    spec.given().when(VerifyEmail(**WHO, at=5)).then(verified())
    spec.given(verified()).when(VerifyEmail(**WHO, at=8)).then()


def test_successful_verification_is_recorded(attempts):
    cmd = RecordVerification(
        **WHO, succeeded=True, method="password", verifier_id="vrf_1", client_id="c_1", at=9
    )
    attempts.given().when(cmd).then(
        UserVerificationSucceeded(
            **WHO, method="password", verifier_id="vrf_1", client_id="c_1", at=9
        )
    )


def test_failure_for_an_unknown_username_names_only_its_hash(attempts):
    cmd = RecordVerification(
        issuer_id="i_1", user_id=None, succeeded=False, method="password", reason="locked",
        username_hash="uh", at=9,
    )  # fmt: skip
    attempts.given().when(cmd).then(
        UserVerificationFailed(
            issuer_id="i_1", method="password", reason="locked", username_hash="uh", at=9
        )
    )


def test_an_attempt_is_recorded_once(attempts):
    replay = AuthFlowReplayAttempt(issuer_id="i_1", flow="login_link", artifact="link", at=1)
    cmd = RecordReplay(issuer_id="i_1", client_id=None, flow="login_link", artifact="link", at=2)
    attempts.given().when(
        RecordReplay(issuer_id="i_1", client_id=None, flow="login_link", artifact="link", at=1)
    ).then(replay)
    attempts.given(replay).when(cmd).then()
