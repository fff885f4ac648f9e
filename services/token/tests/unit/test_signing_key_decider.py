"""The SigningKey decider: created once, retired once, never resurrected."""

from __future__ import annotations

import pytest

from authpi.errors import Conflict, NotFound
from authpi.testing.decider import DeciderSpec
from authpi.token.domain import signing_key
from services.token.tests.factories import (
    create_signing_key,
    retire_signing_key,
    signing_key_created,
    signing_key_retired,
)


@pytest.fixture
def spec() -> DeciderSpec:
    return DeciderSpec(signing_key)


def test_create_on_absent_key_emits_created(spec):
    spec.given().when(create_signing_key()).then(signing_key_created())


def test_repeated_create_emits_nothing(spec):
    spec.given(signing_key_created()).when(create_signing_key()).then()


def test_create_with_a_taken_kid_for_another_alg_conflicts(spec):
    spec.given(signing_key_created()).when(create_signing_key(alg="ES256")).raises(Conflict)


def test_create_after_retirement_conflicts(spec):
    spec.given(signing_key_created(), signing_key_retired()).when(create_signing_key()).raises(
        Conflict
    )


def test_retire_active_key_emits_retired(spec):
    spec.given(signing_key_created()).when(retire_signing_key()).then(signing_key_retired())


def test_retire_twice_emits_nothing(spec):
    spec.given(signing_key_created(), signing_key_retired()).when(
        retire_signing_key(retired_at=30)
    ).then()


def test_retire_unknown_key_is_not_found(spec):
    spec.given().when(retire_signing_key(retired_at=30)).raises(NotFound)
