"""The SigningKey decider: created once, retired once, never resurrected."""

from __future__ import annotations

import pytest

from authpi.contracts.token import SigningKeyCreated, SigningKeyRetired
from authpi.errors import Conflict, NotFound
from authpi.testing.decider import DeciderSpec
from authpi.token.domain import signing_key
from authpi.token.domain.commands import CreateSigningKey, RetireSigningKey

JWK = {"kty": "OKP", "crv": "Ed25519", "x": "abc", "alg": "EdDSA", "use": "sig", "kid": "k1"}


def create(alg: str = "EdDSA") -> CreateSigningKey:
    return CreateSigningKey(
        kid="k1", issuer_id="i_1", account_id="acc_1", alg=alg, public_jwk=JWK, created_at=10
    )


def created() -> SigningKeyCreated:
    return SigningKeyCreated(
        kid="k1", issuer_id="i_1", account_id="acc_1", alg="EdDSA", public_jwk=JWK, created_at=10
    )


def retired() -> SigningKeyRetired:
    return SigningKeyRetired(
        kid="k1", issuer_id="i_1", account_id="acc_1", reason="rotated", retired_at=20
    )


@pytest.fixture
def spec() -> DeciderSpec:
    return DeciderSpec(signing_key)


def test_create_on_absent_key_emits_created(spec):
    spec.given().when(create()).then(created())


def test_repeated_create_emits_nothing(spec):
    spec.given(created()).when(create()).then()


def test_create_with_a_taken_kid_for_another_alg_conflicts(spec):
    spec.given(created()).when(create("ES256")).raises(Conflict)


def test_create_after_retirement_conflicts(spec):
    spec.given(created(), retired()).when(create()).raises(Conflict)


def test_retire_active_key_emits_retired(spec):
    spec.given(created()).when(RetireSigningKey(reason="rotated", retired_at=20)).then(retired())


def test_retire_twice_emits_nothing(spec):
    spec.given(created(), retired()).when(RetireSigningKey(reason="rotated", retired_at=30)).then()


def test_retire_unknown_key_is_not_found(spec):
    spec.given().when(RetireSigningKey(reason="rotated", retired_at=30)).raises(NotFound)
