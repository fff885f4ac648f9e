"""The ApiKey decider: block, unblock, revoke and rotate, their terminal states, repeated
commands, the account check and If-Match (core-api.md 2.3, 3.4)."""

from __future__ import annotations

import pytest

from authpi.contracts.directory import (
    ApiKeyBlocked,
    ApiKeyCreated,
    ApiKeyUnblocked,
    ApiKeyUpdated,
)
from authpi.directory.domain import api_key
from authpi.directory.domain.commands.api_key import (
    BlockApiKey,
    CreateApiKey,
    RevokeApiKey,
    RotateApiKey,
    UnblockApiKey,
)
from authpi.errors import Conflict, NotFound, PreconditionFailed

T0 = 1_781_222_400_000


def created(**changes) -> ApiKeyCreated:
    fields = {
        "id": "key_1",
        "account_id": "acc_a",
        "org_id": "org_a",
        "issuer_id": "i_x",
        "name": "k",
        "secret_sha256": "d1",
        "secret_hint": "h1",
        "created_at": T0,
    }
    return ApiKeyCreated(**{**fields, **changes})


def given(*events) -> api_key.ApiKey:
    state = api_key.INITIAL
    for event in events:
        state = api_key.evolve(state, event)
    return state


def block(**changes) -> BlockApiKey:
    return BlockApiKey(**{"key_id": "key_1", "account_id": "acc_a", "now": T0 + 10, **changes})


def test_create_on_absent_emits_created_and_twice_conflicts():
    cmd = CreateApiKey(
        key_id="key_1", account_id="acc_a", org_id="org_a", issuer_id=None, name="k",
        secret_sha256="d", secret_hint="h", now=T0,
    )  # fmt: skip
    [event] = api_key.decide(cmd, given())
    assert isinstance(event, ApiKeyCreated) and event.created_at == T0
    with pytest.raises(Conflict):
        api_key.decide(cmd, given(event))


def test_block_then_block_again_is_already_satisfied():
    [event] = api_key.decide(block(status_reason="abuse"), given(created()))
    assert isinstance(event, ApiKeyBlocked) and event.status_reason == "abuse"
    assert event.status_at == T0 + 10
    assert api_key.decide(block(), given(created(), event)) == []


def test_unblock_restores_and_on_active_is_a_no_op():
    blocked = ApiKeyBlocked(id="key_1", status_at=T0 + 1)
    cmd = UnblockApiKey(key_id="key_1", account_id="acc_a", now=T0 + 2)
    [event] = api_key.decide(cmd, given(created(), blocked))
    assert isinstance(event, ApiKeyUnblocked)
    assert api_key.decide(cmd, given(created())) == []


def test_revoked_is_terminal():
    revoke = RevokeApiKey(key_id="key_1", account_id="acc_a", now=T0 + 5, status_by="ops")
    [event] = api_key.decide(revoke, given(created()))
    assert isinstance(event, ApiKeyUpdated)
    assert (event.status, event.changed, event.status_by) == ("revoked", ["status"], "ops")
    revoked = given(created(), event)
    assert api_key.decide(revoke, revoked) == []
    for cmd in (block(), UnblockApiKey(key_id="key_1", account_id="acc_a", now=T0 + 6)):
        with pytest.raises(Conflict):
            api_key.decide(cmd, revoked)


def test_expired_key_cannot_be_unblocked_but_can_be_revoked():
    state = given(created(expires_at=T0 + 5), ApiKeyBlocked(id="key_1", status_at=T0 + 1))
    with pytest.raises(Conflict):
        api_key.decide(UnblockApiKey(key_id="key_1", account_id="acc_a", now=T0 + 5), state)
    revoke = RevokeApiKey(key_id="key_1", account_id="acc_a", now=T0 + 6)
    assert len(api_key.decide(revoke, state)) == 1


def test_rotation_gives_the_previous_secret_15_minutes():
    cmd = RotateApiKey(
        key_id="key_1", account_id="acc_a", secret_sha256="d2", secret_hint="h2", now=T0 + 1
    )
    [event] = api_key.decide(cmd, given(created()))
    assert isinstance(event, ApiKeyUpdated) and event.changed == ["secret"]
    assert event.previous_valid_until == T0 + 1 + 900_000


def test_a_key_of_another_account_or_no_key_is_not_found():
    with pytest.raises(NotFound):
        api_key.decide(block(account_id="acc_b"), given(created()))
    with pytest.raises(NotFound):
        api_key.decide(block(if_match='"1"'), given())


def test_if_match_is_checked_against_the_folded_state():
    state = given(created())
    assert state.etag == f'"{T0}"'
    with pytest.raises(PreconditionFailed) as caught:
        api_key.decide(block(if_match='"1"'), state)
    assert caught.value.current_etag == f'"{T0}"'
    assert len(api_key.decide(block(if_match=f'"{T0}"'), state)) == 1


def test_changes_in_the_same_millisecond_still_move_the_etag():
    state = given(created())
    [event] = api_key.decide(block(now=T0), state)
    after = api_key.evolve(state, event)
    assert after.etag == f'"{T0 + 1}"'
