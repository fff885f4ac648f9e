"""The ApiKey decider's PATCH and DELETE: only what changed, status moves active <-> blocked,
terminal keys refuse status changes, metadata merge, If-Match (core-api.md 2.3, 2.6, 3.4)."""

from __future__ import annotations

from authpi.directory.domain import api_key
from authpi.errors import (
    Conflict,
    InsufficientScope,
    NotFound,
    PreconditionFailed,
    Unprocessable,
)
from authpi.testing.decider import DeciderSpec
from services.directory.tests.factories import (
    T0,
    api_key_deleted,
    api_key_updated,
    delete_api_key,
    scoped_api_key_created,
    update_api_key,
)


def spec(*events) -> DeciderSpec:
    return DeciderSpec(api_key).given(*(events or (scoped_api_key_created(),)))


def test_update_carries_only_the_changed_fields():
    spec().when(
        update_api_key(name="k", scopes=["issuers:write"], description=None, tags=["ci"])
    ).then(
        api_key_updated(changed=["tags", "scopes"], tags=["ci"], scopes=["issuers:write"])
    )  # fmt: skip


def test_nullable_fields_are_named_when_cleared():
    given = scoped_api_key_created(expires_at=T0 + 10, description="d")
    cleared = api_key_updated(changed=["description", "expires_at"])
    spec(given).when(update_api_key(expires_at=None, description=None)).then(cleared)
    state = spec(given, cleared).state()
    assert state.expires_at is None and state.description is None


def test_status_moves_between_active_and_blocked_with_reason():
    blocked = api_key_updated(changed=["status"], status="blocked", status_reason="r")
    spec().when(update_api_key(status="blocked", status_reason="r")).then(blocked)
    assert spec(scoped_api_key_created(), blocked).state().status == "blocked"
    spec(scoped_api_key_created(), blocked).when(update_api_key(status="blocked")).then()
    spec(scoped_api_key_created(), blocked).when(update_api_key(status="active", now=T0 + 5)).then(
        api_key_updated(changed=["status"], status="active", updated_at=T0 + 5)
    )


def test_status_change_of_an_expired_key_is_a_conflict():
    spec(scoped_api_key_created(expires_at=T0 - 1)).when(update_api_key(status="blocked")).raises(
        Conflict
    )


def test_metadata_merges_and_over_limit_is_refused():
    spec().when(update_api_key(metadata={"b": 2, "a": None})).then(
        api_key_updated(changed=["metadata"], metadata={"b": 2})
    )
    many = {f"k{i}": i for i in range(50)}
    spec().when(update_api_key(metadata=many)).raises(Unprocessable)


def test_a_patch_that_changes_nothing_emits_nothing():
    spec().when(update_api_key(name="k", metadata={"a": 1})).then()


def test_stale_if_match_is_412_and_other_account_is_404():
    spec().when(update_api_key(name="x", if_match='"1"')).raises(PreconditionFailed)
    spec().when(update_api_key(name="x", account_id="acc_b")).raises(NotFound)


def test_delete_emits_deleted_then_the_key_is_gone():
    spec().when(delete_api_key()).then(api_key_deleted())
    spec(scoped_api_key_created(), api_key_deleted()).when(delete_api_key()).raises(NotFound)


def test_reviving_an_expired_key_is_a_conflict():
    # `expired` is derived from `expires_at` and the command's clock (core-api.md 3.4: terminal).
    expiring = spec(scoped_api_key_created(expires_at=T0 + 10))
    expiring.when(update_api_key(expires_at=None, now=T0 + 10)).raises(Conflict)
    expiring.when(update_api_key(expires_at=T0 + 1_000_000, now=T0 + 11)).raises(Conflict)
    expiring.when(update_api_key(scopes=["issuers:write"], now=T0 + 11)).raises(Conflict)


def test_descriptive_fields_of_an_expired_key_stay_editable():
    spec(scoped_api_key_created(expires_at=T0 + 10)).when(
        update_api_key(name="old ci", now=T0 + 20)
    ).then(api_key_updated(changed=["name"], name="old ci", updated_at=T0 + 20))


def test_extending_a_key_before_it_expires_is_allowed():
    spec(scoped_api_key_created(expires_at=T0 + 10)).when(
        update_api_key(expires_at=None, now=T0 + 9)
    ).then(api_key_updated(changed=["expires_at"], updated_at=T0 + 9))


def test_acting_on_a_key_with_scopes_the_caller_lacks_is_refused():
    strict = spec(scoped_api_key_created(scopes=["issuers:write", "api-keys:read"]))
    weak = frozenset({"api-keys:manage", "api-keys:read"})
    strict.when(update_api_key(name="x", held=weak)).raises(InsufficientScope)
    strict.when(delete_api_key(held=weak)).raises(InsufficientScope)
    strong = frozenset({"api-keys:manage", "issuers:write"})
    strict.when(update_api_key(name="x", held=strong)).then(
        api_key_updated(changed=["name"], name="x")
    )
