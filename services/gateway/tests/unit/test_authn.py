"""Credential checks of the gateway (core-api.md 1.2): Basic parsing, digests, statuses, expiry,
rotation grace, IP allowlists, and the principal an API key becomes."""

from __future__ import annotations

import base64

import pytest

from authpi.crypto.ids import sha256_hex
from authpi.errors import AccessDenied, Unauthorized
from authpi.gateway.caches.api_keys import CachedKey, networks
from authpi.gateway.edge.authn import check_source_ip, parse_basic, principal_for, verify_key


def key(**changes) -> CachedKey:
    fields = {
        "id": "key_1",
        "account_id": "acc_abc",
        "org_id": "org_abc",
        "issuer_id": "i_authpi",
        "name": "ci",
        "created_at": 1,
        "status": "active",
        "scopes": frozenset({"issuers:read"}),
        "ip_allowlist": None,
        "expires_at": None,
        "secret_sha256": sha256_hex("s3cret"),
        "version": 1,
    }
    return CachedKey(**{**fields, **changes})


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_basic_splits_on_the_first_colon():
    assert parse_basic(b64("key_1:se:cret")) == ("key_1", "se:cret")


@pytest.mark.parametrize("value", ["", "%%%", b64("nocolon"), b64(":secret"), b64("key_1:")])
def test_malformed_basic_is_401(value):
    with pytest.raises(Unauthorized):
        parse_basic(value)


def test_active_key_with_the_right_secret_passes():
    assert verify_key(key(), "s3cret", 0) == key()


@pytest.mark.parametrize(
    ("cached", "secret"),
    [
        (None, "s3cret"),
        (key(), "wrong"),
        (key(status="blocked"), "s3cret"),
        (key(status="revoked"), "s3cret"),
        (key(expires_at=1000), "s3cret"),
    ],
    ids=["unknown", "wrong-secret", "blocked", "revoked", "expired"],
)
def test_refused_keys_are_401_unauthorized_client(cached, secret):
    with pytest.raises(Unauthorized) as caught:
        verify_key(cached, secret, 1000)
    assert caught.value.error == "unauthorized_client"


def test_previous_secret_works_only_during_the_grace():
    rotated = key(
        secret_sha256=sha256_hex("new"),
        previous_sha256=sha256_hex("s3cret"),
        previous_valid_until=5000,
    )
    assert verify_key(rotated, "new", 4999)
    assert verify_key(rotated, "s3cret", 4999)
    with pytest.raises(Unauthorized):
        verify_key(rotated, "s3cret", 5000)


@pytest.mark.parametrize(
    ("client", "allowed"),
    [
        ("203.0.113.5", True),
        ("::ffff:203.0.113.5", True),
        ("2001:db8::1", True),
        ("198.51.100.1", False),
        (None, False),
        ("garbage", False),
    ],
)
def test_ip_allowlist(client, allowed):
    restricted = key(ip_allowlist=networks(["203.0.113.0/24", "2001:db8::/32"]))
    if allowed:
        check_source_ip(restricted, client)
    else:
        with pytest.raises(AccessDenied):
            check_source_ip(restricted, client)


def test_account_level_and_organization_level_principals():
    account_key = principal_for(key(), "10.0.0.1")
    assert account_key.level == "account" and account_key.type == "api_key"
    assert account_key.scopes == frozenset({"issuers:read"}) and account_key.ip == "10.0.0.1"
    org_key = principal_for(key(org_id="org_customer"), None)
    assert org_key.level == "organization"
