"""The RevokedToken decider: revoking puts the token on the deny-list once; revoking it again,
or concurrently (a retry that finds the other request's event), decides nothing (RFC 7009
section 2.2: a success either way)."""

from __future__ import annotations

import pytest

from authpi.testing.decider import DeciderSpec
from authpi.token.domain import revoked_token
from services.token.tests.factories import access_token_revoked, revoke_token


@pytest.fixture
def spec() -> DeciderSpec:
    return DeciderSpec(revoked_token)


def test_revoke_a_live_token_emits_revoked(spec):
    spec.given().when(revoke_token()).then(access_token_revoked())


def test_revoke_keeps_the_token_type_and_expiry(spec):
    spec.given().when(revoke_token(token_type="refresh_token", expires_at=5)).then(
        access_token_revoked(token_type="refresh_token", expires_at=5)
    )


def test_revoke_twice_emits_nothing(spec):
    spec.given(access_token_revoked()).when(revoke_token(revoked_at=200)).then()


def test_revoke_by_another_request_first_emits_nothing(spec):
    spec.given(access_token_revoked(revoked_at=150)).when(revoke_token(revoked_at=100)).then()
