"""The Account decider's creation through DeciderSpec."""

from __future__ import annotations

from authpi.directory.domain import account
from authpi.errors import Conflict
from authpi.testing.decider import DeciderSpec
from services.directory.tests.factories import account_created, create_account


def test_create_on_absent_account_emits_created():
    DeciderSpec(account).given().when(create_account()).then(account_created())


def test_repeated_create_is_satisfied_without_events():
    DeciderSpec(account).given(account_created()).when(create_account()).then()


def test_create_with_other_id_on_existing_stream_is_a_conflict():
    spec = DeciderSpec(account).given(account_created())
    spec.when(create_account(account_id="acc_2")).raises(Conflict)
