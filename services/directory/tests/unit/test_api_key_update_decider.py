"""The ApiKey decider's PATCH and DELETE: only what changed, status moves active <-> blocked,
terminal keys refuse status changes, metadata merge, If-Match (core-api.md 2.3, 2.6, 3.4)."""

from __future__ import annotations

import msgspec

from authpi.contracts.directory import ApiKeyCreated, ApiKeyDeleted, ApiKeyUpdated
from authpi.directory.domain import api_key
from authpi.directory.domain.commands.api_key import DeleteApiKey, UpdateApiKey
from authpi.errors import (
    Conflict,
    InsufficientScope,
    NotFound,
    PreconditionFailed,
    Unprocessable,
)
from authpi.testing.decider import DeciderSpec

T0 = 1_781_222_400_000


def created(**changes) -> ApiKeyCreated:
    fields = dict(
        id="key_1", account_id="acc_a", org_id="org_a", issuer_id="i_x", name="k",
        scopes=["issuers:read"], metadata={"a": 1}, secret_sha256="d", secret_hint="h",
        created_at=T0,
    )  # fmt: skip
    return ApiKeyCreated(**{**fields, **changes})


def patch(**fields) -> UpdateApiKey:
    return UpdateApiKey(**{"key_id": "key_1", "account_id": "acc_a", "now": T0, **fields})


def test_update_carries_only_the_changed_fields():
    DeciderSpec(api_key).given(created()).when(
        patch(name="k", scopes=["issuers:write"], description=None, tags=["ci"])
    ).then(
        ApiKeyUpdated(
            id="key_1", changed=["tags", "scopes"], tags=["ci"], scopes=["issuers:write"],
            updated_at=T0 + 1,
        )
    )  # fmt: skip


def test_nullable_fields_are_named_when_cleared():
    spec = DeciderSpec(api_key).given(created(expires_at=T0 + 10, description="d"))
    [event] = api_key.decide(patch(expires_at=None, description=None), spec.state())
    assert event.changed == ["description", "expires_at"]
    state = api_key.evolve(spec.state(), event)
    assert state.expires_at is None and state.description is None


def test_status_moves_between_active_and_blocked_with_reason():
    spec = DeciderSpec(api_key).given(created())
    [event] = api_key.decide(patch(status="blocked", status_reason="r"), spec.state())
    assert (event.status, event.status_reason, event.changed) == ("blocked", "r", ["status"])
    blocked = api_key.evolve(spec.state(), event)
    assert blocked.status == "blocked"
    assert api_key.decide(patch(status="blocked"), blocked) == []
    [back] = api_key.decide(patch(status="active", now=T0 + 5), blocked)
    assert back.status == "active"


def test_status_change_of_an_expired_key_is_a_conflict():
    spec = DeciderSpec(api_key).given(created(expires_at=T0 - 1))
    spec.when(patch(status="blocked")).raises(Conflict)


def test_metadata_merges_and_over_limit_is_refused():
    spec = DeciderSpec(api_key).given(created())
    [event] = api_key.decide(patch(metadata={"b": 2, "a": None}), spec.state())
    assert event.metadata == {"b": 2}
    spec.when(patch(metadata={f"k{i}": i for i in range(50)})).raises(Unprocessable)


def test_a_patch_that_changes_nothing_emits_nothing():
    DeciderSpec(api_key).given(created()).when(patch(name="k", metadata={"a": 1})).then()


def test_stale_if_match_is_412_and_other_account_is_404():
    spec = DeciderSpec(api_key).given(created())
    spec.when(patch(name="x", if_match='"1"')).raises(PreconditionFailed)
    other = msgspec.structs.replace(patch(name="x"), account_id="acc_b")
    spec.when(other).raises(NotFound)


def test_delete_emits_deleted_then_the_key_is_gone():
    spec = DeciderSpec(api_key).given(created())
    cmd = DeleteApiKey(key_id="key_1", account_id="acc_a", now=T0)
    spec.when(cmd).then(ApiKeyDeleted(id="key_1", deleted_at=T0 + 1))
    DeciderSpec(api_key).given(created(), ApiKeyDeleted(id="key_1", deleted_at=T0 + 1)).when(
        cmd
    ).raises(NotFound)


def test_reviving_an_expired_key_is_a_conflict():
    # `expired` is derived from `expires_at` and the command's clock (core-api.md 3.4: terminal).
    spec = DeciderSpec(api_key).given(created(expires_at=T0 + 10))
    spec.when(patch(expires_at=None, now=T0 + 10)).raises(Conflict)
    spec.when(patch(expires_at=T0 + 1_000_000, now=T0 + 11)).raises(Conflict)
    spec.when(patch(scopes=["issuers:write"], now=T0 + 11)).raises(Conflict)


def test_descriptive_fields_of_an_expired_key_stay_editable():
    spec = DeciderSpec(api_key).given(created(expires_at=T0 + 10))
    [event] = api_key.decide(patch(name="old ci", now=T0 + 20), spec.state())
    assert event.changed == ["name"]


def test_extending_a_key_before_it_expires_is_allowed():
    spec = DeciderSpec(api_key).given(created(expires_at=T0 + 10))
    [event] = api_key.decide(patch(expires_at=None, now=T0 + 9), spec.state())
    assert event.changed == ["expires_at"]


def test_acting_on_a_key_with_scopes_the_caller_lacks_is_refused():
    spec = DeciderSpec(api_key).given(created(scopes=["issuers:write", "api-keys:read"]))
    weak = frozenset({"api-keys:manage", "api-keys:read"})
    spec.when(patch(name="x", held=weak)).raises(InsufficientScope)
    spec.when(DeleteApiKey(key_id="key_1", account_id="acc_a", now=T0, held=weak)).raises(
        InsufficientScope
    )
    strong = frozenset({"api-keys:manage", "issuers:write"})
    assert api_key.decide(patch(name="x", held=strong), spec.state()) != []
