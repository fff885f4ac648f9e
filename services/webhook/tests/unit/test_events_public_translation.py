"""The audit log's translation (platform.md 6.1, 6.3): every catalogue event type either becomes a
public event of the documented shape or, for internal types, nothing; sealed PII, digests and
secrets never reach `data`."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest
from polyfactory.factories.msgspec_factory import MsgspecFactory

from authpi.contracts.base import Actor, Meta
from authpi.contracts.catalogue import EVENT_TYPES
from authpi.contracts.facts import HumanSignIn, MachineTokenIssued, SessionTokenRefreshed
from authpi.contracts.public import WEBHOOK_EVENT_TYPE_SET, PublicEvent, public_event_id
from authpi.webhook.domain.public_events import (
    FACT_DATA,
    INTERNAL_TYPES,
    RULES,
    fact_event_id,
    from_fact,
    from_stored,
)

EVENT_ID = "01900000-0000-7000-8000-000000000001"
ACTOR = Actor(type="api_key", key_id="key_1", ip="10.0.0.1")
META = Meta(
    account_id="acc_a", issuer_id="i_meta", actor=ACTOR, trigger="api", request_id="req_1",
    correlation_id="cor_1",
)  # fmt: skip
# Payload fields whose values must never appear in a public event.
SEALED = re.compile(r"^(pii|sealed_hash|cookie_sha256|lookup_address)$|sha256")


def _sealed_values(value: Any, key: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            found += _sealed_values(v, k)
    elif isinstance(value, list):
        for v in value:
            found += _sealed_values(v, key)
    elif isinstance(value, str) and SEALED.search(key) and len(value) >= 4:
        found.append(value)
    return found


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        keys = set(value)
        for v in value.values():
            keys |= _keys(v)
        return keys
    if isinstance(value, list):
        return set().union(*(_keys(v) for v in value)) if value else set()
    return set()


def test_every_catalogue_type_is_public_or_internal():
    for event_type in EVENT_TYPES:
        assert (event_type in RULES) != (event_type in INTERNAL_TYPES), event_type
        assert (event_type in RULES) == (event_type in WEBHOOK_EVENT_TYPE_SET), event_type
    assert set(RULES) <= WEBHOOK_EVENT_TYPE_SET


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_catalogue_event_translates_without_sealed_fields(event_type):
    for _ in range(5):
        event = MsgspecFactory.create_factory(EVENT_TYPES[event_type]).build()
        payload = msgspec.to_builtins(event)
        public = from_stored(event_type, EVENT_ID, payload, META, 1_700_000_000_123)
        if event_type in INTERNAL_TYPES:
            assert public is None
            continue
        assert public is not None
        raw = msgspec.json.encode(public).decode()
        decoded = msgspec.json.decode(raw, type=PublicEvent)
        assert decoded.type == event_type and decoded.id.startswith("evt_")
        assert len(decoded.id) == 30 and decoded.spec == "1" and decoded.source == "com.authpi/v1"
        assert decoded.timestamp == 1_700_000_000_123
        assert decoded.trace == "cor_1" and decoded.trigger == "api"
        assert decoded.auth == {"type": "api_key", "key_id": "key_1", "ip": "10.0.0.1",
                                "request_id": "req_1"}  # fmt: skip
        assert decoded.subject["account_id"]
        assert all(isinstance(v, str) and v for v in decoded.subject.values())
        for secret in _sealed_values(payload):
            assert secret not in raw, (event_type, secret)
        leaked = {k for k in _keys(decoded.data) if SEALED.search(k) or k in ("pii", "password")}
        assert not leaked, (event_type, leaked)


def test_user_created_keeps_snapshot_drops_pii():
    payload = {"type": "user.created", "id": "usr_1", "issuer_id": "i_1", "username_hash": "h" * 64,
               "pii": "c2VhbGVk", "status": "active", "method": "signup", "created_at": 5,
               "scopes": ["a"], "metadata": {"k": "v"}}  # fmt: skip
    public = from_stored("user.created", EVENT_ID, payload, META, 7)
    assert public is not None
    assert public.subject == {"account_id": "acc_a", "issuer_id": "i_1", "user_id": "usr_1"}
    assert public.data == {"id": "usr_1", "issuer_id": "i_1", "status": "active",
                           "method": "signup", "scopes": ["a"], "metadata": {"k": "v"},
                           "created_at": 5}  # fmt: skip


def test_nested_settings_lose_secret_keys():
    payload = {"id": "am_1", "issuer_id": "i_1", "method_type": "social", "created_at": 1,
               "settings": {"client_id": "x", "client_secret": "s3cret", "nested": {"api_key": "k",
                            "private_key": "p", "secret_hint": "...abcd"}}}  # fmt: skip
    public = from_stored("issuer.auth-method.created", EVENT_ID, payload, META, 1)
    assert public is not None
    assert public.data["type"] == "social"
    assert public.data["settings"] == {"client_id": "x", "nested": {"secret_hint": "...abcd"}}


def test_subject_falls_back_to_metadata_subject():
    meta = msgspec.structs.replace(META, subject={"org_id": "org_9"})
    payload = {"id": "key_1", "changed": ["name"], "name": "n", "updated_at": 3,
               "secret_sha256": "d" * 64}  # fmt: skip
    public = from_stored("api-key.updated", EVENT_ID, payload, meta, 3)
    assert public is not None
    assert public.subject == {"account_id": "acc_a", "issuer_id": "i_meta", "key_id": "key_1",
                              "org_id": "org_9"}  # fmt: skip
    assert "secret_sha256" not in public.data


def test_machine_token_fact_becomes_public_event_with_stable_id():
    fact = MachineTokenIssued(account_id="acc_a", issuer_id="i_1", client_id="agt_1",
                              agent_id="agt_1", verifier_id="ver_1", scope="read", aud="api",
                              jti="jti-1", issued_at=1_700_000_000_000,
                              expires_at=1_700_000_300_000, dat_type="agent")  # fmt: skip
    public = from_fact(fact)
    assert public is not None and public.type == "machine.token.issued"
    assert public.subject == {"account_id": "acc_a", "issuer_id": "i_1", "agent_id": "agt_1"}
    assert public.auth == {"type": "agent", "agent_id": "agt_1"}
    assert public.data["jti"] == "jti-1" and public.data["verifier_id"] == "ver_1"
    assert tuple(public.data) == FACT_DATA["machine.token.issued"]  # what proto/ documents
    assert public.id == from_fact(fact).id  # type: ignore[union-attr]
    assert public.id == fact_event_id("machine.token.issued", fact.issued_at, "jti-1")
    later = fact_event_id("machine.token.issued", fact.issued_at + 1, "jti-0")
    assert later > public.id  # time-sortable


def test_refresh_fact_becomes_public_event():
    fact = SessionTokenRefreshed(account_id="acc_a", issuer_id="i_1", client_id="cli_1",
                                 user_id="usr_1", session_id="ses_1", refresh_count=3,
                                 jti="j", scope="openid", access_token_issued_at=9)  # fmt: skip
    public = from_fact(fact)
    assert public is not None and public.type == "session.token-refreshed"
    assert public.subject == {"account_id": "acc_a", "issuer_id": "i_1", "user_id": "usr_1",
                              "session_id": "ses_1", "client_id": "cli_1"}  # fmt: skip
    assert public.data == {"refresh_count": 3, "jti": "j", "scope": "openid",
                           "access_token_issued_at": 9}  # fmt: skip


def test_other_facts_are_not_public():
    fact = HumanSignIn(
        account_id="acc_a", issuer_id="i", client_id="c", user_id="u", session_id="s",
        op_session_id="o", method="password", signed_in_at=1,
    )  # fmt: skip
    assert from_fact(fact) is None


def test_webhook_snapshot_keeps_hints_only():
    payload = {"id": "wh_1", "account_id": "acc_a", "name": "n", "url": "https://x.test/h",
               "status": "active", "created_at": 1, "events": None,
               "auth": {"type": "bearer+signature", "signature_secret_hint": "...abcdef",
                        "bearer_token_hint": "...123456", "signature_secret": "whs_x",
                        "bearer_token": "tok"}}  # fmt: skip
    public = from_stored("webhook.created", EVENT_ID, payload, META, 1)
    assert public is not None
    assert public.subject == {"account_id": "acc_a", "issuer_id": "i_meta", "webhook_id": "wh_1"}
    assert public.data["auth"] == {"type": "bearer+signature",
                                   "signature_secret_hint": "...abcdef",
                                   "bearer_token_hint": "...123456"}  # fmt: skip


def test_a_fact_event_id_is_the_public_id_of_its_time_and_jti_digest():
    """Unchanged across releases: a fact redelivered after an upgrade maps to the id it had."""
    import hashlib

    at, jti = 1_700_000_000_123, "jti-abc"
    digest = hashlib.sha256(f"machine.token.issued:{jti}".encode()).digest()[:10]
    expected = public_event_id(f"{at << 80 | int.from_bytes(digest, 'big'):032x}")
    assert fact_event_id("machine.token.issued", at, jti) == expected


def test_a_fact_event_id_is_the_crockford_encoding_of_its_time_and_digest_for_any_jti():
    """The id's digest part is RFC 4648 base32 in Crockford's alphabet: the same characters as
    encoding the 128-bit value whole, for any time and jti (checked on many)."""
    import hashlib
    import random

    rng = random.Random(7)
    for _ in range(2_000):
        at = rng.randrange(0, 2**48)
        jti = "".join(
            rng.choices("abcdefghijklmnopqrstuvwxyz0123456789-_.~", k=rng.randrange(1, 40))
        )
        kind = rng.choice(["machine.token.issued", "session.token-refreshed"])
        digest = hashlib.sha256(f"{kind}:{jti}".encode()).digest()[:10]
        expected = public_event_id(f"{at << 80 | int.from_bytes(digest, 'big'):032x}")
        assert fact_event_id(kind, at, jti) == expected
