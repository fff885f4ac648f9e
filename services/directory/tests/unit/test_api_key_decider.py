"""The ApiKey decider: block, unblock, revoke and rotate, their terminal states, repeated
commands, the account check and If-Match (core-api.md 2.3, 3.4)."""

from __future__ import annotations

from authpi.directory.domain import api_key
from authpi.errors import Conflict, NotFound, PreconditionFailed
from authpi.testing.decider import DeciderSpec
from services.directory.tests.factories import (
    T0,
    api_key_blocked,
    api_key_created,
    api_key_unblocked,
    api_key_updated,
    block_api_key,
    create_api_key,
    revoke_api_key,
    rotate_api_key,
    unblock_api_key,
)


def spec(*events) -> DeciderSpec:
    return DeciderSpec(api_key).given(*events)


def test_create_on_absent_emits_created_and_twice_conflicts():
    cmd = create_api_key(issuer_id=None, secret_sha256="d", secret_hint="h")
    created = api_key_created(issuer_id=None, secret_sha256="d", secret_hint="h")
    spec().when(cmd).then(created)
    spec(created).when(cmd).raises(Conflict)


def test_block_then_block_again_is_already_satisfied():
    blocked = api_key_blocked(status_reason="abuse", status_at=T0 + 10)
    spec(api_key_created()).when(block_api_key(status_reason="abuse")).then(blocked)
    spec(api_key_created(), blocked).when(block_api_key()).then()


def test_unblock_restores_and_on_active_is_a_no_op():
    cmd = unblock_api_key(now=T0 + 2)
    spec(api_key_created(), api_key_blocked()).when(cmd).then(api_key_unblocked(status_at=T0 + 2))
    spec(api_key_created()).when(cmd).then()


def test_revoked_is_terminal():
    revoke = revoke_api_key(now=T0 + 5, status_by="ops")
    revoked = api_key_updated(
        changed=["status"], status="revoked", status_by="ops", updated_at=T0 + 5
    )
    spec(api_key_created()).when(revoke).then(revoked)
    spec(api_key_created(), revoked).when(revoke).then()
    for cmd in (block_api_key(), unblock_api_key(now=T0 + 6)):
        spec(api_key_created(), revoked).when(cmd).raises(Conflict)


def test_expired_key_cannot_be_unblocked_but_can_be_revoked():
    given = (api_key_created(expires_at=T0 + 5), api_key_blocked())
    spec(*given).when(unblock_api_key(now=T0 + 5)).raises(Conflict)
    spec(*given).when(revoke_api_key(now=T0 + 6)).then(
        api_key_updated(changed=["status"], status="revoked", updated_at=T0 + 6)
    )


def test_rotation_gives_the_previous_secret_15_minutes():
    spec(api_key_created()).when(rotate_api_key(now=T0 + 1)).then(
        api_key_updated(
            changed=["secret"], secret_sha256="d2", secret_hint="h2",
            previous_valid_until=T0 + 1 + 900_000, updated_at=T0 + 1,
        )
    )  # fmt: skip


def test_a_key_of_another_account_or_no_key_is_not_found():
    spec(api_key_created()).when(block_api_key(account_id="acc_b")).raises(NotFound)
    spec().when(block_api_key(if_match='"1"')).raises(NotFound)


def test_if_match_is_checked_against_the_folded_state():
    assert spec(api_key_created()).state().etag == f'"{T0}"'
    error = spec(api_key_created()).when(block_api_key(if_match='"1"')).raises(PreconditionFailed)
    assert error.current_etag == f'"{T0}"'
    spec(api_key_created()).when(block_api_key(if_match=f'"{T0}"')).then(
        api_key_blocked(status_at=T0 + 10)
    )


def test_changes_in_the_same_millisecond_still_move_the_etag():
    blocked = api_key_blocked(status_at=T0 + 1)
    spec(api_key_created()).when(block_api_key(now=T0)).then(blocked)
    assert spec(api_key_created(), blocked).state().etag == f'"{T0 + 1}"'
