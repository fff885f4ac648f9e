"""The Account decider's update: snapshot events naming what changed, the metadata merge rule,
If-Match, no event for a no-op, strictly increasing `updated_at` (core-api.md 2.3, 2.6, 3.2)."""

from __future__ import annotations

import msgspec
import pytest

from authpi.contracts.directory import AccountCreated, AccountUpdated
from authpi.directory.domain import account
from authpi.directory.domain.commands.account import UpdateAccount
from authpi.errors import NotFound, PreconditionFailed, Unprocessable
from authpi.testing.decider import DeciderSpec

T0 = 1_781_222_400_000


def created() -> AccountCreated:
    return AccountCreated(
        id="acc_1", org_id="org_1", name="Acme", owner_user_id="usr_1",
        metadata={"crm": "c1"}, created_at=T0,
    )  # fmt: skip


def update(**fields) -> UpdateAccount:
    return UpdateAccount(**{"account_id": "acc_1", "now": T0, **fields})


def test_update_emits_a_snapshot_naming_the_changed_fields():
    DeciderSpec(account).given(created()).when(
        update(name="Acme Ltd", metadata={"tier": "gold"})
    ).then(
        AccountUpdated(
            id="acc_1", changed=["name", "metadata"], name="Acme Ltd", description=None,
            logo_url=None, owner_user_id="usr_1", metadata={"crm": "c1", "tier": "gold"},
            updated_at=T0 + 1,
        )
    )  # fmt: skip


def test_an_update_that_changes_nothing_emits_nothing():
    DeciderSpec(account).given(created()).when(update(name="Acme", owner_user_id="usr_1")).then()


def test_null_metadata_clears_and_null_values_remove_keys():
    spec = DeciderSpec(account).given(created())
    [event] = account.decide(update(metadata={"crm": None}), spec.state())
    assert event.metadata == {} and event.changed == ["metadata"]
    [event] = account.decide(update(metadata=None), spec.state())
    assert event.metadata == {}


def test_merged_metadata_over_the_limit_is_refused():
    many = {f"k{i}": i for i in range(50)}
    DeciderSpec(account).given(created()).when(update(metadata=many)).raises(Unprocessable)


def test_stale_if_match_is_412_and_current_matches():
    spec = DeciderSpec(account).given(created())
    spec.when(update(name="X", if_match='"1"')).raises(PreconditionFailed)
    [event] = account.decide(update(name="X", if_match=f'"{T0}"'), spec.state())
    assert event.name == "X"


def test_update_of_a_missing_or_other_account_is_404():
    DeciderSpec(account).given().when(update(name="X")).raises(NotFound)
    other = msgspec.structs.replace(update(name="X"), account_id="acc_2")
    DeciderSpec(account).given(created()).when(other).raises(NotFound)


def test_evolve_applies_the_snapshot_and_moves_the_etag():
    spec = DeciderSpec(account).given(created())
    [event] = account.decide(update(description="d", logo_url="https://l"), spec.state())
    state = account.evolve(spec.state(), event)
    assert (state.description, state.logo_url, state.etag) == ("d", "https://l", f'"{T0 + 1}"')
    assert account.decide(update(description="d", now=T0), state) == []


@pytest.mark.parametrize("now", [T0 - 5, T0, T0 + 1])
def test_updated_at_strictly_increases(now):
    [event] = account.decide(update(name="Y", now=now), account.evolve(account.INITIAL, created()))
    assert event.updated_at > T0
