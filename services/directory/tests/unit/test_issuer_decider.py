"""The Issuer decider: settings normalized into the token policy, no event for an unchanged
patch, If-Match, account isolation, deletion, and the auth-method rules."""

from __future__ import annotations

import msgspec
import pytest

from authpi.contracts.directory import (
    AuthMethodCreated,
    IssuerCreated,
    IssuerDeleted,
    IssuerUpdated,
    TokenPolicy,
)
from authpi.directory.domain import issuer
from authpi.directory.domain.commands.issuer import (
    CreateAuthMethod,
    CreateIssuer,
    DeleteAuthMethod,
    DeleteIssuer,
    UpdateAuthMethod,
    UpdateIssuer,
)
from authpi.errors import Conflict, NotFound, PreconditionFailed, Unprocessable
from authpi.testing.decider import DeciderSpec

ACC, ISS, T0 = "acc_1", "i_1", 1_000


def created(**overrides) -> IssuerCreated:
    cmd = CreateIssuer(issuer_id=ISS, account_id=ACC, name="prod", now=T0)
    (event,) = issuer.decide(cmd, issuer.INITIAL)
    return msgspec.structs.replace(event, **overrides)


@pytest.fixture
def spec() -> DeciderSpec:
    return DeciderSpec(issuer)


def test_create_fills_default_settings_and_policy():
    event = created()
    assert event.tokens == TokenPolicy()
    assert event.settings["access"]["sessions"] == {"max_age": 604_800, "idle_timeout": 43_200}
    assert event.settings["security"]["signing"]["default_alg"] == "ES256"


def test_create_with_lifetimes_sets_the_policy():
    settings = {
        "access": {"tokens": {"access_token_ttl": 300}},
        "security": {"signing": {"algorithms": ["EdDSA"]}},
    }
    cmd = CreateIssuer(issuer_id=ISS, account_id=ACC, name="p", now=T0, settings=settings)
    (event,) = issuer.decide(cmd, issuer.INITIAL)
    assert event.tokens.access_token_ttl == 300
    assert event.tokens.signing_algs == ["EdDSA"] and event.tokens.default_signature_alg == "EdDSA"


def test_create_over_the_21_day_cap_is_refused(spec):
    settings = {"access": {"tokens": {"refresh_token_ttl": 21 * 86400 + 1}}}
    cmd = CreateIssuer(issuer_id=ISS, account_id=ACC, name="p", now=T0, settings=settings)
    spec.given().when(cmd).raises(Unprocessable)


def test_create_twice_conflicts(spec):
    spec.given(created()).when(
        CreateIssuer(issuer_id=ISS, account_id=ACC, name="x", now=T0)
    ).raises(Conflict)


def test_unchanged_patch_is_no_event(spec):
    spec.given(created()).when(
        UpdateIssuer(issuer_id=ISS, account_id=ACC, now=T0 + 5, name="prod", settings={})
    ).then()


def test_patch_names_changed_fields_and_moves_status_time():
    cmd = UpdateIssuer(issuer_id=ISS, account_id=ACC, now=T0, status="disabled")
    (event,) = issuer.decide(cmd, issuer.evolve(issuer.INITIAL, created()))
    assert isinstance(event, IssuerUpdated)
    assert event.changed == ["status"] and event.updated_at == T0 + 1 == event.status_at


def test_patch_with_stale_etag_is_412(spec):
    cmd = UpdateIssuer(issuer_id=ISS, account_id=ACC, now=T0 + 5, name="x", if_match='"1"')
    spec.given(created()).when(cmd).raises(PreconditionFailed)


def test_other_account_sees_no_issuer(spec):
    spec.given(created()).when(DeleteIssuer(issuer_id=ISS, account_id="acc_2", now=T0 + 5)).raises(
        NotFound
    )


def test_deleted_issuer_is_gone(spec):
    deleted = IssuerDeleted(id=ISS, account_id=ACC, deleted_at=T0 + 1)
    spec.given(created(), deleted).when(
        UpdateIssuer(issuer_id=ISS, account_id=ACC, now=T0 + 5, name="x")
    ).raises(NotFound)


def method(**overrides) -> AuthMethodCreated:
    fields = {"id": "am_1", "issuer_id": ISS, "method_type": "password", "created_at": T0}
    return AuthMethodCreated(**{**fields, **overrides})


def test_second_method_of_a_type_conflicts(spec):
    cmd = CreateAuthMethod(issuer_id=ISS, account_id=ACC, method_id="am_2", type="password", now=T0)
    spec.given(created(), method()).when(cmd).raises(Conflict)


def test_social_methods_are_unique_per_provider(spec):
    google = method(method_type="social", provider="google")
    cmd = CreateAuthMethod(
        issuer_id=ISS, account_id=ACC, method_id="am_2", type="social", provider="github", now=T0
    )
    (event,) = issuer.decide(cmd, spec.given(created(), google).state())
    assert event.provider == "github"


def test_method_update_and_delete(spec):
    state = spec.given(created(), method()).state()
    (updated,) = issuer.decide(
        UpdateAuthMethod(issuer_id=ISS, account_id=ACC, method_id="am_1", now=T0, enabled=False),
        state,
    )
    assert updated.changed == ["enabled"] and updated.updated_at == T0 + 1
    assert (
        issuer.decide(
            UpdateAuthMethod(issuer_id=ISS, account_id=ACC, method_id="am_1", now=T0, enabled=True),
            state,
        )
        == []
    )
    after = issuer.evolve(state, updated)
    assert after.methods["am_1"].enabled is False
    with pytest.raises(NotFound):
        issuer.decide(
            DeleteAuthMethod(issuer_id=ISS, account_id=ACC, method_id="am_9", now=T0), after
        )
