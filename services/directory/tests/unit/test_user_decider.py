"""The User and PersonalToken deciders: creation, PATCH changes and statuses, soft delete, the
issuer check, If-Match and the stale-read guard, token revocation and deletion."""

from __future__ import annotations

import msgspec

from authpi.contracts.directory import UserSsoLinked, UserSsoProvisioned
from authpi.directory.domain import personal_token, user
from authpi.directory.domain.commands.user import LinkSsoIdentity, SsoLink
from authpi.errors import Conflict, NotFound, PreconditionFailed
from authpi.testing.decider import DeciderSpec
from services.directory.tests.factories import (
    ETAG0,
    T0,
    create_user,
    delete_token,
    delete_user,
    revoke_token,
    token_created,
    token_deleted,
    token_updated,
    update_user,
    user_blocked,
    user_created,
    user_deleted,
    user_unblocked,
    user_updated,
)


def test_create_on_absent_user_emits_created_with_sealed_pii():
    DeciderSpec(user).when(create_user()).then(user_created())


def test_create_twice_conflicts():
    DeciderSpec(user).given(user_created()).when(create_user()).raises(Conflict)


def test_profile_change_emits_updated_with_the_new_sealed_snapshot():
    cmd = update_user(pii="sealed2", pii_changed=["profile"], metadata={"a": 1})
    DeciderSpec(user).given(user_created()).when(cmd).then(
        user_updated(changed=["profile", "metadata"], pii="sealed2", metadata={"a": 1})
    )


def test_an_update_that_changes_nothing_emits_nothing():
    given = user_created(metadata={"a": 1})
    DeciderSpec(user).given(given).when(update_user(metadata={"a": 1})).then()


def test_suspend_then_reactivate_emit_blocked_and_unblocked():
    blocked = user_blocked(status_reason="r")
    suspend = update_user(status="suspended", status_reason="r")
    DeciderSpec(user).given(user_created()).when(suspend).then(blocked)
    reactivate = update_user(status="active", based_on=f'"{T0 + 10}"', now=T0 + 10)
    DeciderSpec(user).given(user_created(), blocked).when(reactivate).then(user_unblocked())


def test_stale_preparation_and_if_match_mismatch_are_refused():
    later = user_updated(changed=["metadata"], metadata={}, updated_at=T0 + 5)
    DeciderSpec(user).given(user_created(), later).when(update_user()).raises(user.Stale)
    stale = update_user(if_match=ETAG0)
    DeciderSpec(user).given(user_created(), later).when(stale).raises(PreconditionFailed)


def test_a_user_of_another_issuer_or_a_deleted_one_is_not_found():
    DeciderSpec(user).given(user_created()).when(update_user(issuer_id="i_b")).raises(NotFound)
    gone = (user_created(), user_deleted())
    DeciderSpec(user).given(*gone).when(update_user()).raises(NotFound)


def test_delete_once_then_nothing():
    DeciderSpec(user).given(user_created()).when(delete_user()).then(user_deleted())
    DeciderSpec(user).given(user_created(), user_deleted()).when(delete_user()).then()


def test_revoke_once_then_nothing_and_other_accounts_see_nothing():
    cmd = revoke_token(status_by="ops")
    revoked = token_updated(changed=["status"], status="revoked", status_by="ops")
    DeciderSpec(personal_token).given(token_created()).when(cmd).then(revoked)
    DeciderSpec(personal_token).given(token_created(), revoked).when(cmd).then()
    other = revoke_token(account_id="acc_b")
    DeciderSpec(personal_token).given(token_created()).when(other).raises(NotFound)


def test_delete_checks_if_match():
    stale = delete_token(if_match='"1"')
    DeciderSpec(personal_token).given(token_created()).when(stale).raises(PreconditionFailed)
    current = delete_token(if_match=ETAG0)
    DeciderSpec(personal_token).given(token_created()).when(current).then(token_deleted())


LINK = SsoLink(org_id="org_1", external_issuer="https://idp.acme.com", external_subject="sub-1")


def test_a_user_created_through_sso_is_provisioned_with_its_link():
    DeciderSpec(user).when(create_user(method="sso", sso=LINK)).then(
        user_created(method="sso"),
        UserSsoProvisioned(id="usr_1", issuer_id="i_a", org_id="org_1",
                           external_issuer="https://idp.acme.com", external_subject="sub-1",
                           provisioned_at=T0),
    )  # fmt: skip


def test_an_identity_links_to_an_existing_user_once():
    link = LinkSsoIdentity(user_id="usr_1", issuer_id="i_a", link=LINK, now=T0 + 5)
    linked = UserSsoLinked(
        id="usr_1", issuer_id="i_a", org_id="org_1", external_issuer="https://idp.acme.com",
        external_subject="sub-1", linked_at=T0 + 5,
    )  # fmt: skip
    DeciderSpec(user).given(user_created()).when(link).then(linked)
    DeciderSpec(user).given(user_created(), linked).when(link).then()
    other = msgspec.structs.replace(link, link=msgspec.structs.replace(LINK, org_id="org_2"))
    DeciderSpec(user).given(user_created(), linked).when(other).then(
        msgspec.structs.replace(linked, org_id="org_2")
    )
    DeciderSpec(user).given(user_created(), user_deleted()).when(link).raises(NotFound)
    # Linking leaves the user's ETag alone (no field of the user changed).
    state = user.evolve(user.evolve(user.INITIAL, user_created()), linked)
    assert isinstance(state, user.Present) and state.etag == ETAG0
