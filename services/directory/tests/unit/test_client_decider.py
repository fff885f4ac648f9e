"""The Client decider: type-dependent settings, status events, rotation with a 15-minute grace,
public clients without secrets, soft delete, If-Match and issuer isolation."""

from __future__ import annotations

import pytest

from authpi.contracts.directory import (
    ClientBlocked,
    ClientCreated,
    ClientDeleted,
    ClientSecretRotated,
    ClientUnblocked,
    ClientUpdated,
)
from authpi.directory.domain import client
from authpi.directory.domain.commands.client import (
    CreateClient,
    DeleteClient,
    RotateClientSecret,
    UpdateClient,
)
from authpi.errors import Conflict, NotFound, PreconditionFailed, Unprocessable
from authpi.testing.decider import DeciderSpec

ISS, CID, T0 = "i_1", "c_1", 1_000


def create(client_type: str = "m2m", **settings) -> CreateClient:
    return CreateClient(
        client_id=CID,
        issuer_id=ISS,
        name="app",
        type=client_type,
        now=T0,
        settings=settings,
        secret_sha256="d0" if client_type in ("web", "m2m") else None,
    )


def created(client_type: str = "m2m", **settings) -> ClientCreated:
    (event,) = client.decide(create(client_type, **settings), client.INITIAL)
    assert isinstance(event, ClientCreated)
    return event


@pytest.fixture
def spec() -> DeciderSpec:
    return DeciderSpec(client)


def test_m2m_defaults():
    event = created()
    assert event.confidential and event.config.grant_types == ["client_credentials"]
    assert event.config.scopes == [] and event.config.response_types == []
    assert event.config.access_token_ttl == 1800 and event.config.response_signature_alg == "ES256"


def test_spa_defaults_to_code_flow_and_user_scopes():
    event = created("spa", redirect_uris=["https://a.test/cb"])
    assert not event.confidential and event.secret_sha256 is None
    assert event.config.grant_types == ["authorization_code", "refresh_token"]
    assert event.config.response_types == ["code"]
    assert event.config.scopes == ["openid", "profile", "email"]


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
    spec.given().when(create(client_type, **settings)).raises(Unprocessable)


def test_status_change_and_field_change_give_two_events(spec):
    cmd = UpdateClient(
        client_id=CID, issuer_id=ISS, now=T0, name="new", status="disabled", status_reason="audit"
    )
    events = client.decide(cmd, spec.given(created()).state())
    assert [type(e) for e in events] == [ClientUpdated, ClientBlocked]
    assert events[0].updated_at == T0 + 1 and events[1].status_at == T0 + 2


def test_unblock_and_repeat(spec):
    blocked = ClientBlocked(id=CID, issuer_id=ISS, status_at=T0 + 1)
    cmd = UpdateClient(client_id=CID, issuer_id=ISS, now=T0 + 5, status="active")
    (event,) = client.decide(cmd, spec.given(created(), blocked).state())
    assert isinstance(event, ClientUnblocked)
    spec.given(created(), blocked).when(
        UpdateClient(client_id=CID, issuer_id=ISS, now=T0 + 5, status="disabled")
    ).then()


def test_settings_patch_merges(spec):
    state = spec.given(created("web", redirect_uris=["https://a.test/cb"])).state()
    cmd = UpdateClient(client_id=CID, issuer_id=ISS, now=T0, settings={"scopes": ["openid"]})
    (event,) = client.decide(cmd, state)
    assert event.changed == ["settings"] and event.config.redirect_uris == ["https://a.test/cb"]
    assert event.config.scopes == ["openid"]


def test_type_is_immutable(spec):
    spec.given(created()).when(
        UpdateClient(client_id=CID, issuer_id=ISS, now=T0, type="web")
    ).raises(Unprocessable)


def test_rotation_keeps_previous_digest_for_15_minutes(spec):
    cmd = RotateClientSecret(
        client_id=CID, issuer_id=ISS, secret_sha256="d1", secret_hint="h", now=T0 + 10
    )
    (event,) = client.decide(cmd, spec.given(created()).state())
    assert isinstance(event, ClientSecretRotated)
    assert event.previous_secret_sha256 == "d0" and event.secret_sha256 == "d1"
    assert event.previous_valid_until == T0 + 10 + 900_000


def test_public_client_rotation_conflicts(spec):
    cmd = RotateClientSecret(
        client_id=CID, issuer_id=ISS, secret_sha256="d1", secret_hint="h", now=T0
    )
    spec.given(created("spa")).when(cmd).raises(Conflict)


def test_stale_etag_is_412(spec):
    spec.given(created()).when(
        DeleteClient(client_id=CID, issuer_id=ISS, now=T0, if_match='"5"')
    ).raises(PreconditionFailed)


def test_delete_is_soft_and_repeatable(spec):
    deleted = ClientDeleted(id=CID, issuer_id=ISS, deleted_at=T0 + 1)
    spec.given(created(), deleted).when(DeleteClient(client_id=CID, issuer_id=ISS, now=T0)).then()
    spec.given(created(), deleted).when(
        UpdateClient(client_id=CID, issuer_id=ISS, now=T0, name="x")
    ).raises(NotFound)


def test_other_issuer_sees_no_client(spec):
    spec.given(created()).when(DeleteClient(client_id=CID, issuer_id="i_2", now=T0)).raises(
        NotFound
    )
