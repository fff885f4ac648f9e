"""The one fold of the api-key events: what each event does to a key, for every holder."""

from __future__ import annotations

import msgspec

from authpi.contracts.directory import (
    ApiKeyBlocked,
    ApiKeyCreated,
    ApiKeyDeleted,
    ApiKeyUnblocked,
    ApiKeyUpdated,
)
from authpi.contracts.directory.api_key_state import ApiKeyState, changes, evolve

CREATED = ApiKeyCreated(
    id="key_1", account_id="acc_1", org_id="org_1", issuer_id="i_1", name="k",
    description="d", scopes=["issuers:read"], ip_allowlist=["203.0.113.0/24"],
    secret_sha256="d1", secret_hint="h1", created_at=1000,
)  # fmt: skip


class Status(msgspec.Struct, frozen=True, kw_only=True):
    """A holder of a few fields only, with a stream version."""

    id: str
    status: str
    scopes: frozenset[str]
    version: int


def fold(*events: object, state: ApiKeyState | None = None) -> ApiKeyState | None:
    for version, event in enumerate(events, start=1):
        state = evolve(state, event, version, into=ApiKeyState)  # type: ignore[arg-type]
    return state


def test_created_key_is_active_with_what_the_event_says():
    key = fold(CREATED)
    assert key is not None and key.status == "active" and key.version == 1
    assert (key.scopes, key.ip_allowlist, key.secret_sha256) == (
        ["issuers:read"], ["203.0.113.0/24"], "d1",
    )  # fmt: skip


def test_no_key_before_its_creation_or_after_its_deletion():
    assert fold(ApiKeyBlocked(id="key_1", status_at=2)) is None
    assert fold(CREATED, ApiKeyDeleted(id="key_1", deleted_at=2)) is None


def test_update_sets_present_fields_and_nullable_ones_named_in_changed():
    update = ApiKeyUpdated(
        id="key_1", changed=["scopes", "expires_at"], scopes=[], expires_at=None, updated_at=2000
    )
    key = fold(CREATED, update)
    assert key is not None and key.scopes == [] and key.expires_at is None
    assert key.description == "d" and key.name == "k" and key.updated_at == 2000
    cleared = ApiKeyUpdated(id="key_1", changed=["description"], updated_at=3000)
    assert fold(CREATED, update, cleared).description is None  # type: ignore[union-attr]


def test_status_carries_its_time_reason_and_actor():
    blocked = ApiKeyBlocked(id="key_1", status_reason="abuse", status_by="usr_1", status_at=2000)
    key = fold(CREATED, blocked)
    assert key is not None
    assert (key.status, key.status_at, key.status_reason, key.status_by, key.updated_at) == (
        "blocked", 2000, "abuse", "usr_1", 2000,
    )  # fmt: skip
    key = fold(CREATED, blocked, ApiKeyUnblocked(id="key_1", status_at=3000))
    assert key is not None and (key.status, key.status_reason) == ("active", None)
    revoked = ApiKeyUpdated(id="key_1", changed=["status"], status="revoked", updated_at=4000)
    assert changes(revoked)["status_at"] == 4000


def test_rotation_keeps_the_previous_digest_until_the_grace_ends():
    rotated = ApiKeyUpdated(
        id="key_1", changed=["secret"], secret_sha256="d2", secret_hint="h2",
        previous_valid_until=901_000, updated_at=5000,
    )  # fmt: skip
    key = fold(CREATED, rotated)
    assert key is not None
    assert (key.secret_sha256, key.previous_sha256, key.previous_valid_until) == (
        "d2", "d1", 901_000,
    )  # fmt: skip
    assert (key.secret_hint, key.last_rotated_at) == ("h2", 5000)


def test_a_replayed_event_changes_nothing():
    key = fold(CREATED, ApiKeyBlocked(id="key_1", status_at=2000))
    assert key is not None
    unblock = ApiKeyUnblocked(id="key_1", status_at=3000)
    assert evolve(key, unblock, 2, into=ApiKeyState) == key
    assert evolve(key, CREATED, 1, into=ApiKeyState) == key


def test_a_holder_keeps_only_its_fields_converted_its_way():
    key = evolve(None, CREATED, 1, into=Status, convert={"scopes": frozenset})
    assert key == Status(id="key_1", status="active", scopes=frozenset({"issuers:read"}), version=1)
    update = ApiKeyUpdated(id="key_1", changed=["scopes"], scopes=["a", "b"], updated_at=2)
    key = evolve(key, update, 2, into=Status, convert={"scopes": frozenset})
    assert key == Status(id="key_1", status="active", scopes=frozenset({"a", "b"}), version=2)


def test_without_a_version_events_apply_in_order():
    key = evolve(None, CREATED, None, into=ApiKeyState)
    block = ApiKeyBlocked(id="key_1", status_at=2000)
    key = evolve(key, block, None, into=ApiKeyState)
    assert key is not None and key.status == "blocked" and key.version == 0
