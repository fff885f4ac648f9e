"""The Issuer decider: settings normalized into the token policy, no event for an unchanged
patch, If-Match, account isolation, deletion, and the auth-method rules."""

from __future__ import annotations

import pytest

from authpi.contracts.directory import TokenPolicy
from authpi.directory.domain import issuer
from authpi.errors import Conflict, NotFound, PreconditionFailed, Unprocessable
from authpi.testing.decider import DeciderSpec
from services.directory.tests.factories import (
    ISSUER_SETTINGS,
    T0,
    auth_method_created,
    auth_method_updated,
    create_auth_method,
    create_issuer,
    delete_auth_method,
    delete_issuer,
    issuer_created,
    issuer_deleted,
    issuer_updated,
    update_auth_method,
    update_issuer,
)


@pytest.fixture
def spec() -> DeciderSpec:
    return DeciderSpec(issuer)


def test_create_fills_default_settings_and_policy(spec):
    # The defaults: sessions of 7 days (12 hours idle), ES256 first (factories.ISSUER_SETTINGS).
    spec.given().when(create_issuer()).then(issuer_created())


def test_create_with_lifetimes_sets_the_policy(spec):
    settings = {
        "access": {"tokens": {"access_token_ttl": 300}},
        "security": {"signing": {"algorithms": ["EdDSA"]}},
    }
    access = ISSUER_SETTINGS["access"]
    normalized = {
        **ISSUER_SETTINGS,
        "access": {**access, "tokens": {**access["tokens"], "access_token_ttl": 300}},
        "security": {"signing": {"algorithms": ["EdDSA"], "default_alg": "EdDSA"}},
    }
    policy = TokenPolicy(
        access_token_ttl=300, signing_algs=["EdDSA"], default_signature_alg="EdDSA"
    )
    spec.given().when(create_issuer(name="p", settings=settings)).then(
        issuer_created(name="p", settings=normalized, tokens=policy)
    )


def test_create_over_the_21_day_cap_is_refused(spec):
    settings = {"access": {"tokens": {"refresh_token_ttl": 21 * 86400 + 1}}}
    spec.given().when(create_issuer(name="p", settings=settings)).raises(Unprocessable)


def test_create_twice_conflicts(spec):
    spec.given(issuer_created()).when(create_issuer(name="x")).raises(Conflict)


def test_unchanged_patch_is_no_event(spec):
    spec.given(issuer_created()).when(update_issuer(now=T0 + 5, name="prod", settings={})).then()


def test_patch_names_changed_fields_and_moves_status_time(spec):
    spec.given(issuer_created()).when(update_issuer(status="disabled")).then(
        issuer_updated(changed=["status"], status="disabled", settings=ISSUER_SETTINGS,
                       tokens=TokenPolicy(), status_at=T0 + 1)
    )  # fmt: skip


def test_patch_with_stale_etag_is_412(spec):
    cmd = update_issuer(now=T0 + 5, name="x", if_match='"1"')
    spec.given(issuer_created()).when(cmd).raises(PreconditionFailed)


def test_other_account_sees_no_issuer(spec):
    cmd = delete_issuer(account_id="acc_2", now=T0 + 5)
    spec.given(issuer_created()).when(cmd).raises(NotFound)


def test_deleted_issuer_is_gone(spec):
    cmd = update_issuer(now=T0 + 5, name="x")
    spec.given(issuer_created(), issuer_deleted()).when(cmd).raises(NotFound)


def test_second_method_of_a_type_conflicts(spec):
    spec.given(issuer_created(), auth_method_created()).when(create_auth_method()).raises(Conflict)


def test_social_methods_are_unique_per_provider(spec):
    google = auth_method_created(method_type="social", provider="google")
    cmd = create_auth_method(type="social", provider="github")
    spec.given(issuer_created(), google).when(cmd).then(
        auth_method_created(id="am_2", method_type="social", provider="github")
    )


def test_method_update_and_delete(spec):
    given = (issuer_created(), auth_method_created())
    updated = auth_method_updated(changed=["enabled"], enabled=False)
    spec.given(*given).when(update_auth_method(enabled=False)).then(updated)
    spec.given(*given).when(update_auth_method(enabled=True)).then()
    assert spec.given(*given, updated).state().methods["am_1"].enabled is False
    spec.given(*given, updated).when(delete_auth_method(method_id="am_9")).raises(NotFound)
