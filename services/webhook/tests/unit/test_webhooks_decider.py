"""The Webhook decider (platform.md 7.1, 7.2, 7.7): creation, PATCH semantics (fields, metadata
merge, no-op), secrets issued by hint only (regeneration, auth type changes), admin status
changes as webhook.paused / webhook.resumed, the system's breaker transitions (no-ops outside
their state), account isolation, If-Match and the soft delete."""

from __future__ import annotations

import pytest

from authpi.contracts.webhook import WebhookAuthInfo
from authpi.errors import Conflict, InvalidRequest, NotFound, PreconditionFailed
from authpi.testing.decider import DeciderSpec
from authpi.webhook.domain import webhook
from services.webhook.tests.factories import (
    OTHER_ACC,
    SIGNED,
    T0,
    close_circuit,
    create_webhook,
    delete_webhook,
    disable_failing,
    open_circuit,
    paused,
    resumed,
    update_webhook,
    webhook_created,
    webhook_deleted,
    webhook_updated,
)

FAILING = paused("failing", T0 + 10, "circuit_open", "system")


@pytest.fixture
def spec() -> DeciderSpec:
    return DeciderSpec(webhook)


def test_create_issues_the_hints_its_auth_type_needs(spec):
    spec.given().when(create_webhook()).then(webhook_created())
    both = WebhookAuthInfo(
        type="bearer+signature", signature_algorithm="hmac-sha256",
        signature_secret_hint="...sig001", bearer_token_hint="...brr001",
    )  # fmt: skip
    spec.given().when(create_webhook(auth_type="bearer+signature")).then(webhook_created(auth=both))
    spec.given().when(create_webhook(auth_type="none")).then(
        webhook_created(auth=WebhookAuthInfo(type="none"))
    )


def test_create_disabled_records_the_status_time_and_reason(spec):
    cmd = create_webhook(status="disabled", status_reason="not yet", status_by="ops")
    spec.given().when(cmd).then(webhook_created(status="disabled", status_reason="not yet",
                                                status_by="ops", status_at=T0))  # fmt: skip


def test_create_twice_is_a_conflict(spec):
    spec.given(webhook_created()).when(create_webhook()).raises(Conflict)


def test_update_changes_fields_and_merges_metadata(spec):
    given = webhook_created(metadata={"team": "a", "x": "1"})
    cmd = update_webhook(name="Renamed", events=None, metadata={"x": None, "y": "2"})
    spec.given(given).when(cmd).then(webhook_updated(
        ["name", "events", "metadata"], name="Renamed", events=None,
        metadata={"team": "a", "y": "2"},
    ))  # fmt: skip


def test_update_with_nothing_new_emits_nothing(spec):
    spec.given(webhook_created()).when(update_webhook(name="User Events")).then()


def test_regenerate_secret_issues_a_new_hint_and_says_so(spec):
    cmd = update_webhook(regenerate_signature=True)
    new_auth = WebhookAuthInfo(type="signature", signature_algorithm="hmac-sha256",
                               signature_secret_hint="...sig002")  # fmt: skip
    spec.given(webhook_created()).when(cmd).then(
        webhook_updated(["auth"], auth=new_auth, rotated=["signature"])
    )


def test_regenerate_without_a_signature_is_refused(spec):
    given = webhook_created(auth=WebhookAuthInfo(type="none"))
    spec.given(given).when(update_webhook(regenerate_signature=True)).raises(InvalidRequest)
    spec.given(given).when(update_webhook(regenerate_bearer=True)).raises(InvalidRequest)


def test_adding_bearer_issues_a_token_and_keeps_the_secret(spec):
    both = WebhookAuthInfo(
        type="bearer+signature", signature_algorithm="hmac-sha256",
        signature_secret_hint="...sig001", bearer_token_hint="...brr002",
    )  # fmt: skip
    spec.given(webhook_created()).when(update_webhook(auth_type="bearer+signature")).then(
        webhook_updated(["auth"], auth=both, rotated=["bearer"])
    )


def test_dropping_the_signature_drops_its_hint(spec):
    spec.given(webhook_created()).when(update_webhook(auth_type="none")).then(
        webhook_updated(["auth"], auth=WebhookAuthInfo(type="none"))
    )


def test_admin_disable_and_enable_are_paused_and_resumed(spec):
    spec.given(webhook_created()).when(
        update_webhook(status="disabled", status_reason="maintenance", status_by="ops")
    ).then(paused("disabled", T0 + 10, "maintenance", "ops"))
    disabled = paused("disabled", T0 + 10, "maintenance", "ops")
    spec.given(webhook_created(), disabled).when(update_webhook(T0 + 20, status="active")).then(
        resumed(T0 + 20)
    )
    spec.given(webhook_created(), disabled).when(update_webhook(status="disabled")).then()


def test_a_field_change_with_a_status_change_is_two_events(spec):
    spec.given(webhook_created()).when(update_webhook(name="N", status="disabled")).then(
        webhook_updated(["name"], name="N"), paused("disabled", T0 + 10)
    )


def test_admin_active_closes_an_open_breaker(spec):
    spec.given(webhook_created(), FAILING).when(update_webhook(T0 + 20, status="active")).then(
        resumed(T0 + 20)
    )


def test_breaker_transitions_follow_the_state_and_repeat_safely(spec):
    spec.given(webhook_created()).when(open_circuit()).then(FAILING)
    spec.given(webhook_created(), FAILING).when(open_circuit(T0 + 20)).then()
    spec.given(webhook_created(), FAILING).when(close_circuit()).then(
        resumed(T0 + 20, "circuit_closed", "system")
    )
    spec.given(webhook_created()).when(close_circuit()).then()
    spec.given(webhook_created(), FAILING).when(disable_failing()).then(
        paused("disabled", T0 + 20, "circuit_open_expired", "system")
    )
    spec.given(webhook_created()).when(disable_failing()).then()
    disabled = paused("disabled", T0 + 10, None, "ops")
    spec.given(webhook_created(), disabled).when(open_circuit(T0 + 20)).then()
    spec.given().when(open_circuit()).then()
    spec.given(webhook_created(), webhook_deleted()).when(close_circuit()).then()


def test_another_accounts_webhook_is_not_found(spec):
    spec.given(webhook_created()).when(update_webhook(account_id=OTHER_ACC, name="x")).raises(
        NotFound
    )
    spec.given(webhook_created()).when(delete_webhook(account_id=OTHER_ACC)).raises(NotFound)


def test_if_match_must_name_the_current_version(spec):
    spec.given(webhook_created()).when(update_webhook(name="x", if_match='"1"')).raises(
        PreconditionFailed
    )
    spec.given(webhook_created()).when(update_webhook(name="x", if_match=f'"{T0}"')).then(
        webhook_updated(["name"], name="x")
    )


def test_delete_is_soft_and_final(spec):
    spec.given(webhook_created()).when(delete_webhook()).then(webhook_deleted())
    spec.given(webhook_created(), webhook_deleted()).when(delete_webhook()).raises(NotFound)
    spec.given(webhook_created(), webhook_deleted()).when(update_webhook(name="x")).raises(NotFound)
    spec.given().when(update_webhook(name="x")).raises(NotFound)


def test_updated_at_moves_strictly_forward(spec):
    spec.given(webhook_created()).when(update_webhook(T0, name="x")).then(
        webhook_updated(["name"], T0 + 1, name="x")
    )
    assert SIGNED.signature_secret_hint == "...sig001"
