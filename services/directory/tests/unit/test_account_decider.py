"""The Account decider through DeciderSpec."""

from __future__ import annotations

from authpi.contracts.directory import AccountCreated
from authpi.directory.domain import account
from authpi.directory.domain.commands.account import CreateAccount
from authpi.errors import Conflict
from authpi.testing.decider import DeciderSpec


def create(account_id: str = "acc_1") -> CreateAccount:
    return CreateAccount(
        account_id=account_id, org_id="org_1", name="Acme", owner_user_id=None, now=5
    )


def created(account_id: str = "acc_1") -> AccountCreated:
    return AccountCreated(
        id=account_id, org_id="org_1", name="Acme", owner_user_id=None, created_at=5
    )


def test_create_on_absent_account_emits_created():
    DeciderSpec(account).given().when(create()).then(created())


def test_repeated_create_is_satisfied_without_events():
    DeciderSpec(account).given(created()).when(create()).then()


def test_create_with_other_id_on_existing_stream_is_a_conflict():
    DeciderSpec(account).given(created()).when(create("acc_2")).raises(Conflict)
