"""The Session, RefreshTokenFamily and Consent deciders (core-api.md 3.11, idp-api.md 5.4, 9)."""

from __future__ import annotations

import pytest

from authpi.contracts.sessions import SessionCompromised, UserConsentRevoked
from authpi.errors import Conflict, NotFound, PreconditionFailed
from authpi.testing.decider import DeciderSpec
from authpi.token.domain import consent, refresh_family, session
from authpi.token.domain.refresh_family import Rotated, StaleGeneration, Unused
from authpi.token.domain.session import (
    CompromiseSession,
    ExpireSession,
    ReactivateSession,
    RevokeSession,
    SuspendSession,
)
from services.token.tests.factories import (
    consent_granted,
    create_session,
    grant_consent,
    refresh_family_revoked,
    refresh_family_started,
    refresh_token_rotated,
    revoke_consent,
    revoke_family,
    rotate,
    session_created,
    session_expired,
    session_terminated,
    session_updated,
    start_family,
)


@pytest.fixture
def sessions() -> DeciderSpec:
    return DeciderSpec(session)


@pytest.fixture
def families() -> DeciderSpec:
    return DeciderSpec(refresh_family)


@pytest.fixture
def consents() -> DeciderSpec:
    return DeciderSpec(consent)


# -- Session ------------------------------------------------------------------------------------


def test_create_opens_an_active_session(sessions):
    sessions.given().when(create_session()).then(session_created())


def test_create_twice_decides_nothing(sessions):
    sessions.given(session_created()).when(create_session(created_at=999)).then()


def test_commands_on_a_missing_session_are_not_found(sessions):
    sessions.given().when(RevokeSession(reason="admin", at=1)).raises(NotFound)


def test_suspend_then_reactivate(sessions):
    sessions.given(session_created()).when(SuspendSession(reason="x", by="key_1", at=200)).then(
        session_updated(status_reason="x", status_by="key_1")
    )
    sessions.given(session_created(), session_updated()).when(
        ReactivateSession(by="key_1", at=300)
    ).then(session_updated(status="active", status_by="key_1", updated_at=300))


def test_reactivate_only_a_suspended_session(sessions):
    sessions.given(session_created()).when(ReactivateSession(at=300)).raises(Conflict)
    sessions.given(session_created(), session_terminated()).when(ReactivateSession(at=300)).raises(
        Conflict
    )


def test_revoke_is_idempotent_but_an_expired_session_conflicts(sessions):
    sessions.given(session_created()).when(RevokeSession(reason="admin", at=200)).then(
        session_terminated()
    )
    sessions.given(session_created(), session_terminated()).when(
        RevokeSession(reason="admin", at=300)
    ).then()
    sessions.given(session_created(), session_expired()).when(
        RevokeSession(reason="admin", at=300)
    ).raises(Conflict)
    # a cascade skips ended sessions instead of refusing
    sessions.given(session_created(), session_expired()).when(
        RevokeSession(reason="logout", at=300, lenient=True)
    ).then()


def test_if_match_is_compared_with_the_state(sessions):
    sessions.given(session_created()).when(SuspendSession(at=200, if_match='"1"')).raises(
        PreconditionFailed
    )
    sessions.given(session_created()).when(SuspendSession(at=200, if_match='"100"')).then(
        session_updated()
    )
    sessions.given(session_created(), session_updated()).when(
        RevokeSession(reason="admin", at=300, if_match='"100"')
    ).raises(PreconditionFailed)


def test_expire_once(sessions):
    sessions.given(session_created()).when(ExpireSession(reason="idle", at=200)).then(
        session_expired()
    )
    sessions.given(session_created(), session_terminated()).when(
        ExpireSession(reason="idle", at=300)
    ).then()


def test_compromise_marks_and_revokes(sessions):
    sessions.given(session_created()).when(
        CompromiseSession(reason="refresh_token_reuse", jti="j0", at=200)
    ).then(
        SessionCompromised(
            session_id="s_1", issuer_id="i_1", user_id="usr_1",
            compromised_reason="refresh_token_reuse", jti="j0", compromised_at=200,
        ),
        session_terminated(revoked_reason="compromised", status_by="system"),
    )  # fmt: skip


# -- RefreshTokenFamily (one stream per rotation generation) -----------------------------------


def test_start_then_rotate(families):
    families.given().when(start_family()).then(refresh_family_started())
    families.given(refresh_family_started()).when(rotate()).then(refresh_token_rotated())


def test_a_later_generation_rotates_from_an_empty_stream(families):
    families.given().when(rotate(jti="j1", next_jti="j2")).then(
        refresh_token_rotated(jti="j1", next_jti="j2")
    )


def test_rotating_a_rotated_token_is_a_replay(families):
    families.given(refresh_family_started(), refresh_token_rotated()).when(
        rotate(next_jti="j9")
    ).then()
    assert isinstance(families.state(), Rotated)


def test_a_revoked_token_never_rotates(families):
    families.given(refresh_family_revoked()).when(rotate()).then()


def test_revoke_the_current_token(families):
    families.given(refresh_family_started()).when(revoke_family()).then(refresh_family_revoked())
    families.given(refresh_family_revoked()).when(revoke_family(revoked_at=400)).then()


def test_revoking_a_token_rotated_meanwhile_is_retried(families):
    families.given(refresh_family_started(), refresh_token_rotated()).when(revoke_family()).raises(
        StaleGeneration
    )


def test_unused_after_start(families):
    assert families.given(refresh_family_started()).state() == Unused(started=True)


# -- Consent ------------------------------------------------------------------------------------


def test_grant_adds_scopes_once(consents):
    consents.given().when(grant_consent()).then(consent_granted())
    consents.given(consent_granted()).when(grant_consent(at=200)).then()
    consents.given(consent_granted()).when(grant_consent(scopes=["email"], at=200)).then(
        consent_granted(scopes=["email", "openid"], granted_at=200)
    )


def test_revoke_withdraws_all_and_is_idempotent(consents):
    consents.given(consent_granted()).when(revoke_consent()).then(
        UserConsentRevoked(
            issuer_id="i_1", user_id="usr_1", client_id="c_1", scopes=["openid"], revoked_at=200
        )
    )
    consents.given().when(revoke_consent()).then()
