"""The User and PersonalToken deciders: creation, PATCH changes and statuses, soft delete, the
issuer check, If-Match and the stale-read guard, token revocation and deletion."""

from __future__ import annotations

from authpi.contracts.directory import (
    PersonalTokenCreated,
    PersonalTokenDeleted,
    PersonalTokenUpdated,
    UserBlocked,
    UserCreated,
    UserDeleted,
    UserUnblocked,
    UserUpdated,
)
from authpi.directory.domain import personal_token, user
from authpi.directory.domain.commands.personal_token import DeletePersonalToken, RevokePersonalToken
from authpi.directory.domain.commands.user import CreateUser
from authpi.errors import Conflict, NotFound, PreconditionFailed
from authpi.testing.decider import DeciderSpec

T0 = 1_781_222_400_000
ETAG0 = f'"{T0}"'


def created(**changes) -> UserCreated:
    fields = {
        "id": "usr_1",
        "issuer_id": "i_a",
        "username_hash": "h",
        "pii": "sealed",
        "created_at": T0,
    }
    return UserCreated(**{**fields, **changes})


def update(**changes) -> user.UpdateUser:
    fields = {"user_id": "usr_1", "issuer_id": "i_a", "now": T0 + 10, "based_on": ETAG0}
    return user.UpdateUser(**{**fields, **changes})


def test_create_on_absent_user_emits_created_with_sealed_pii():
    cmd = CreateUser(user_id="usr_1", issuer_id="i_a", username_hash="h", pii="sealed", now=T0)
    DeciderSpec(user).when(cmd).then(created())


def test_create_twice_conflicts():
    cmd = CreateUser(user_id="usr_1", issuer_id="i_a", username_hash="h", pii="sealed", now=T0)
    DeciderSpec(user).given(created()).when(cmd).raises(Conflict)


def test_profile_change_emits_updated_with_the_new_sealed_snapshot():
    cmd = update(pii="sealed2", pii_changed=["profile"], metadata={"a": 1})
    DeciderSpec(user).given(created()).when(cmd).then(
        UserUpdated(
            id="usr_1",
            issuer_id="i_a",
            changed=["profile", "metadata"],
            pii="sealed2",
            metadata={"a": 1},
            updated_at=T0 + 10,
        )
    )


def test_an_update_that_changes_nothing_emits_nothing():
    DeciderSpec(user).given(created(metadata={"a": 1})).when(update(metadata={"a": 1})).then()


def test_suspend_then_reactivate_emit_blocked_and_unblocked():
    blocked = UserBlocked(
        id="usr_1", issuer_id="i_a", status="suspended", status_reason="r", status_at=T0 + 10
    )
    DeciderSpec(user).given(created()).when(update(status="suspended", status_reason="r")).then(
        blocked
    )
    DeciderSpec(user).given(created(), blocked).when(
        update(status="active", based_on=f'"{T0 + 10}"', now=T0 + 10)
    ).then(UserUnblocked(id="usr_1", issuer_id="i_a", status_at=T0 + 11))


def test_stale_preparation_and_if_match_mismatch_are_refused():
    later = UserUpdated(
        id="usr_1", issuer_id="i_a", changed=["metadata"], metadata={}, updated_at=T0 + 5
    )
    DeciderSpec(user).given(created(), later).when(update()).raises(user.Stale)
    DeciderSpec(user).given(created(), later).when(update(if_match=ETAG0)).raises(
        PreconditionFailed
    )


def test_a_user_of_another_issuer_or_a_deleted_one_is_not_found():
    DeciderSpec(user).given(created()).when(update(issuer_id="i_b")).raises(NotFound)
    gone = UserDeleted(id="usr_1", issuer_id="i_a", deleted_at=T0 + 1)
    DeciderSpec(user).given(created(), gone).when(update()).raises(NotFound)


def test_delete_once_then_nothing():
    cmd = user.DeleteUser(user_id="usr_1", issuer_id="i_a", now=T0)
    gone = UserDeleted(id="usr_1", issuer_id="i_a", deleted_at=T0 + 1)
    DeciderSpec(user).given(created()).when(cmd).then(gone)
    DeciderSpec(user).given(created(), gone).when(cmd).then()


def token_created() -> PersonalTokenCreated:
    return PersonalTokenCreated(
        id="ptk_1",
        account_id="acc_a",
        issuer_id="i_a",
        user_id="usr_1",
        name="cli",
        jti="ptk_1",
        token_sha256="d",
        token_hint="h",
        created_at=T0,
    )


def test_revoke_once_then_nothing_and_other_accounts_see_nothing():
    cmd = RevokePersonalToken(token_id="ptk_1", account_id="acc_a", now=T0, status_by="ops")
    revoked = PersonalTokenUpdated(
        id="ptk_1",
        user_id="usr_1",
        changed=["status"],
        status="revoked",
        status_by="ops",
        updated_at=T0 + 1,
    )
    DeciderSpec(personal_token).given(token_created()).when(cmd).then(revoked)
    DeciderSpec(personal_token).given(token_created(), revoked).when(cmd).then()
    other = RevokePersonalToken(token_id="ptk_1", account_id="acc_b", now=T0)
    DeciderSpec(personal_token).given(token_created()).when(other).raises(NotFound)


def test_delete_checks_if_match():
    stale = DeletePersonalToken(token_id="ptk_1", account_id="acc_a", now=T0, if_match='"1"')
    DeciderSpec(personal_token).given(token_created()).when(stale).raises(PreconditionFailed)
    cmd = DeletePersonalToken(token_id="ptk_1", account_id="acc_a", now=T0, if_match=ETAG0)
    DeciderSpec(personal_token).given(token_created()).when(cmd).then(
        PersonalTokenDeleted(id="ptk_1", user_id="usr_1", deleted_at=T0 + 1)
    )
