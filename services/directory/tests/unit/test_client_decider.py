"""The Client decider: type-dependent settings, status events, rotation with a 15-minute grace,
public clients without secrets, soft delete, If-Match and issuer isolation."""

from __future__ import annotations

import pytest

from authpi.directory.domain import client
from authpi.errors import Conflict, NotFound, PreconditionFailed, Unprocessable
from authpi.testing.decider import DeciderSpec
from services.directory.tests.factories import (
    T0,
    client_blocked,
    client_config,
    client_created,
    client_deleted,
    client_secret_rotated,
    client_unblocked,
    client_updated,
    create_client,
    delete_client,
    rotate_client_secret,
    spa_client_created,
    update_client,
    user_facing_config,
    web_client_created,
)


@pytest.fixture
def spec() -> DeciderSpec:
    return DeciderSpec(client)


def test_m2m_defaults(spec):
    # client_credentials only, no scopes or response types, 30-minute tokens signed with ES256.
    spec.given().when(create_client()).then(client_created(config=client_config()))


def test_spa_defaults_to_code_flow_and_user_scopes(spec):
    # Public (no secret), authorization_code + refresh_token, `code`, openid profile email.
    spec.given().when(create_client("spa", redirect_uris=["https://a.test/cb"])).then(
        spa_client_created(config=user_facing_config())
    )


@pytest.mark.parametrize(
    ("client_type", "settings"),
    [
        ("m2m", {"grant_types": ["refresh_token"]}),
        ("spa", {"redirect_uris": ["http://example.com/cb"]}),
        ("web", {"id_token_ttl": 30}),
        ("web", {"organizations": {"mode": "allowlist", "allowlist": ["acc_1"]}}),
    ],
)
def test_invalid_settings_are_refused(spec, client_type, settings):
    spec.given().when(create_client(client_type, **settings)).raises(Unprocessable)


def test_status_change_and_field_change_give_two_events(spec):
    cmd = update_client(name="new", status="disabled", status_reason="audit")
    spec.given(client_created()).when(cmd).then(
        client_updated(changed=["name"], name="new"),
        client_blocked(status_reason="audit", status_at=T0 + 2),
    )


def test_unblock_and_repeat(spec):
    blocked = client_blocked()
    spec.given(client_created(), blocked).when(update_client(now=T0 + 5, status="active")).then(
        client_unblocked(status_at=T0 + 5)
    )
    spec.given(client_created(), blocked).when(update_client(now=T0 + 5, status="disabled")).then()


def test_settings_patch_merges(spec):
    web = web_client_created()
    spec.given(web).when(update_client(settings={"scopes": ["openid"]})).then(
        client_updated(changed=["settings"], config=user_facing_config(scopes=["openid"]))
    )


def test_type_is_immutable(spec):
    spec.given(client_created()).when(update_client(type="web")).raises(Unprocessable)


def test_rotation_keeps_previous_digest_for_15_minutes(spec):
    spec.given(client_created()).when(rotate_client_secret(now=T0 + 10)).then(
        client_secret_rotated(previous_valid_until=T0 + 10 + 900_000, secret_rotated_at=T0 + 10)
    )


def test_public_client_rotation_conflicts(spec):
    spec.given(spa_client_created()).when(rotate_client_secret()).raises(Conflict)


def test_stale_etag_is_412(spec):
    spec.given(client_created()).when(delete_client(if_match='"5"')).raises(PreconditionFailed)


def test_delete_is_soft_and_repeatable(spec):
    spec.given(client_created(), client_deleted()).when(delete_client()).then()
    spec.given(client_created(), client_deleted()).when(update_client(name="x")).raises(NotFound)


def test_other_issuer_sees_no_client(spec):
    spec.given(client_created()).when(delete_client(issuer_id="i_2")).raises(NotFound)
