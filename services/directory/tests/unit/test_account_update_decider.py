"""The Account decider's update: snapshot events naming what changed, the metadata merge rule,
If-Match, no event for a no-op, strictly increasing `updated_at` (core-api.md 2.3, 2.6, 3.2)."""

from __future__ import annotations

import pytest

from authpi.directory.domain import account
from authpi.errors import NotFound, PreconditionFailed, Unprocessable
from authpi.testing.decider import DeciderSpec
from services.directory.tests.factories import (
    T0,
    owned_account_created,
    owned_account_updated,
    update_account,
)


def spec() -> DeciderSpec:
    return DeciderSpec(account).given(owned_account_created())


def test_update_emits_a_snapshot_naming_the_changed_fields():
    spec().when(update_account(name="Acme Ltd", metadata={"tier": "gold"})).then(
        owned_account_updated(
            changed=["name", "metadata"], name="Acme Ltd", metadata={"crm": "c1", "tier": "gold"}
        )
    )


def test_an_update_that_changes_nothing_emits_nothing():
    spec().when(update_account(name="Acme", owner_user_id="usr_1")).then()


def test_null_metadata_clears_and_null_values_remove_keys():
    cleared = owned_account_updated(changed=["metadata"], metadata={})
    spec().when(update_account(metadata={"crm": None})).then(cleared)
    spec().when(update_account(metadata=None)).then(cleared)


def test_merged_metadata_over_the_limit_is_refused():
    many = {f"k{i}": i for i in range(50)}
    spec().when(update_account(metadata=many)).raises(Unprocessable)


def test_stale_if_match_is_412_and_current_matches():
    spec().when(update_account(name="X", if_match='"1"')).raises(PreconditionFailed)
    current = update_account(name="X", if_match=f'"{T0}"')
    spec().when(current).then(owned_account_updated(changed=["name"], name="X"))


def test_update_of_a_missing_or_other_account_is_404():
    DeciderSpec(account).given().when(update_account(name="X")).raises(NotFound)
    spec().when(update_account(name="X", account_id="acc_2")).raises(NotFound)


def test_evolve_applies_the_snapshot_and_moves_the_etag():
    changed = owned_account_updated(
        changed=["description", "logo_url"], description="d", logo_url="https://l"
    )
    spec().when(update_account(description="d", logo_url="https://l")).then(changed)
    after = spec().given(owned_account_created(), changed)
    state = after.state()
    assert (state.description, state.logo_url, state.etag) == ("d", "https://l", f'"{T0 + 1}"')
    after.when(update_account(description="d", now=T0)).then()


@pytest.mark.parametrize("now", [T0 - 5, T0, T0 + 1])
def test_updated_at_strictly_increases(now):
    at = max(now, T0 + 1)
    snapshot = owned_account_updated(changed=["name"], name="Y", updated_at=at)
    spec().when(update_account(name="Y", now=now)).then(snapshot)
