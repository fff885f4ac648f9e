"""The pure rules of delivery: the signature of platform.md 7.5 (its worked example), the body
and headers of 7.4, the retry schedule and Retry-After of 7.6, the breaker of 7.7, filters 7.3."""

from __future__ import annotations

import hashlib
import hmac

import msgspec
import pytest

from authpi.webhook.delivery.registry import Credentials, Target
from authpi.webhook.delivery.sender import Attempt, address_guard, body_of, headers_of
from authpi.webhook.delivery.signing import signature, signature_header
from authpi.webhook.domain.delivery import (
    DEFAULT_DELAYS,
    Circuit,
    Outcome,
    after_attempt,
    expired,
    http_outcome,
    matches,
    on_attempt,
    parse_retry_after,
    probe_due,
    retry_delay_ms,
    truncate_body,
)

SECRET = "whs_Qm9vN3pXc2VjcmV0S2V5Rm9yRG9jc09ubHkxMjM0NTY"
BODY = (
    b'{"specversion":"1.0","id":"dlv_01JZ8Q4M3T7V2K9X5B6N1R0C4D","source":"com.authpi.webhooks/v1/'
    b'wh_abc123xyz","type":"event","datacontenttype":"application/json","time":"2026-06-20T10:15:'
    b'30Z","data":{"spec":"1","id":"evt_01JZ8Q4M2Y3H5N7P9R1T3V5X7Z","type":"user.created","source'
    b'":"com.authpi/v1","trace":"3f1c9a7e2b","trigger":"api","auth":{"type":"api_key","key_id":"k'
    b'ey_4f8a2b9c0d1e4f5a8b7c6d5e4f3a2b1c"},"subject":{"account_id":"acc_7k2m9x4p1q8w5e3r6t0y2u4i'
    b'7","issuer_id":"i_4r8w2k9m5x1p7q3e6t0y2u4i8","user_id":"usr_01j4h7k3m5n8"},"timestamp":1781'
    b'950530123,"data":{"id":"usr_01j4h7k3m5n8","username_type":"email","status":"active"}}}'
)


def _verify(raw_body: bytes, header: str, secret: str, now: int) -> bool:
    """The receiver reference logic of platform.md 7.5, with `now` given."""
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    ts = next((v for k, v in parts if k == "t"), None)
    sigs = [v for k, v in parts if k == "v1"]
    if ts is None or not ts.isdigit() or not sigs or abs(now - int(ts)) > 300:
        return False
    expected = hmac.new(secret.encode(), ts.encode() + b"." + raw_body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in sigs)


def test_worked_example_signature_matches_the_spec() -> None:
    assert len(BODY) == 633
    assert signature(SECRET, 1781950530, BODY) == (
        "dc776252dd9e77f39e9a7ae3e213b8d45676ac1e7f10a4efa1ccbc889599ba94"
    )
    assert signature_header([SECRET], 1781950530, BODY) == (
        "t=1781950530,v1=dc776252dd9e77f39e9a7ae3e213b8d45676ac1e7f10a4efa1ccbc889599ba94"
    )


def test_timestamp_is_bound_into_the_signature() -> None:
    assert signature(SECRET, 1781950531, BODY) == (
        "a9a5c371025cfdfa77189767437c14f829555575d22199a9158f75c8a3c23258"
    )


def test_rotation_signs_with_every_active_secret_newest_first() -> None:
    header = signature_header(["whs_new", SECRET], 1781950530, BODY)
    t, new, old = header.split(",")
    assert t == "t=1781950530"
    assert new == "v1=" + signature("whs_new", 1781950530, BODY)
    assert old.endswith("dc776252dd9e77f39e9a7ae3e213b8d45676ac1e7f10a4efa1ccbc889599ba94")
    assert _verify(BODY, header, SECRET, 1781950530)
    assert _verify(BODY, header, "whs_new", 1781950600)
    assert not _verify(BODY, header, "whs_other", 1781950530)


def _target(**kw: object) -> Target:
    base: dict[str, object] = {
        "id": "wh_abc123xyz",
        "account_id": "acc_7k2m9x4p1q8w5e3r6t0y2u4i7",
        "url": "https://example.test/hook",
        "status": "active",
        "auth_type": "bearer+signature",
        "events": None,
        "subjects": None,
        "max_attempts": 8,
        "failure_threshold": 20,
        "probe_interval_seconds": 900,
        "disable_after_seconds": 259200,
    }
    base.update(kw)
    return msgspec.convert(base, Target)


def test_body_is_the_cloudevents_envelope_of_the_worked_example() -> None:
    event = msgspec.json.decode(BODY)["data"]
    attempt = Attempt(
        delivery_id="dlv_01JZ8Q4M3T7V2K9X5B6N1R0C4D",
        event_id=event["id"],
        event_type="user.created",
        occurred_at=1781950530123,
        event=msgspec.json.encode(event),
        attempt=1,
    )
    assert body_of("wh_abc123xyz", attempt) == BODY


def test_headers_carry_ids_attempt_signature_and_bearer() -> None:
    attempt = Attempt(
        delivery_id="dlv_1",
        event_id="evt_1",
        event_type="user.created",
        occurred_at=0,
        event=b"{}",
        attempt=3,
    )
    creds = Credentials(signature_secrets=[SECRET], bearer_token="tok")
    headers = headers_of(_target(), creds, attempt, BODY, 1781950530)
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "AuthPI-Webhooks/1.0"
    assert headers["X-Webhook-Id"] == "dlv_1"
    assert headers["X-Webhook-Event-Id"] == "evt_1"
    assert headers["X-Webhook-Event-Type"] == "user.created"
    assert headers["X-Webhook-Attempt"] == "3"
    assert headers["Authorization"] == "Bearer tok"
    assert _verify(BODY, headers["X-Webhook-Signature"], SECRET, 1781950530)
    plain = headers_of(_target(auth_type="none"), creds, attempt, BODY, 1781950530)
    assert "X-Webhook-Signature" not in plain and "Authorization" not in plain


def test_default_schedule_is_the_spec_with_ten_percent_jitter() -> None:
    assert [retry_delay_ms(n, DEFAULT_DELAYS, 0.0) for n in range(1, 8)] == [
        60_000,
        300_000,
        1_800_000,
        7_200_000,
        21_600_000,
        43_200_000,
        86_400_000,
    ]
    assert retry_delay_ms(1, DEFAULT_DELAYS, 0.1) == 66_000
    assert retry_delay_ms(1, DEFAULT_DELAYS, -0.1) == 54_000
    assert retry_delay_ms(1, DEFAULT_DELAYS, 5.0) == 66_000  # jitter is clamped to ±10 %
    assert retry_delay_ms(12, DEFAULT_DELAYS, 0.0) == 86_400_000  # the last delay repeats


def test_retry_after_wins_when_longer_and_is_capped_at_a_day() -> None:
    assert retry_delay_ms(1, DEFAULT_DELAYS, 0.0, retry_after_s=600) == 600_000
    assert retry_delay_ms(1, DEFAULT_DELAYS, 0.0, retry_after_s=5) == 60_000
    assert retry_delay_ms(1, DEFAULT_DELAYS, 0.0, retry_after_s=10**9) == 86_400_000


def test_retry_after_is_read_on_429_and_503_only() -> None:
    now = 1_781_950_530_000
    assert http_outcome(429, b"", "120", now, 5).retry_after_s == 120
    assert http_outcome(503, b"", "Sat, 20 Jun 2026 10:17:30 GMT", now, 5).retry_after_s == 120
    assert http_outcome(500, b"", "120", now, 5).retry_after_s is None
    assert parse_retry_after("soon", now) is None


def test_only_2xx_succeeds_and_redirects_fail() -> None:
    assert http_outcome(204, b"", None, 0, 1).success
    redirect = http_outcome(302, b"", None, 0, 1)
    assert not redirect.success and redirect.error == "http_302"


def test_response_bodies_are_kept_to_4_kib() -> None:
    kept = truncate_body("é".encode() * 5000)
    assert kept is not None and len(kept.encode()) <= 4096 and set(kept) == {"é"}
    assert truncate_body(b"") is None


def test_budget_exhausted_fails_and_success_ends() -> None:
    failed = Outcome(success=False, error="http_500")
    assert after_attempt(failed, 1, 8, 1000, DEFAULT_DELAYS, 0.0).next_attempt_at == 61_000
    assert after_attempt(failed, 8, 8, 1000, DEFAULT_DELAYS, 0.0).status == "failed"
    assert after_attempt(Outcome(success=True), 1, 8, 1000, DEFAULT_DELAYS, 0.0).status == (
        "succeeded"
    )


def test_breaker_opens_at_the_threshold_of_consecutive_failures() -> None:
    c = Circuit()
    for _ in range(2):
        c, action = on_attempt(c, False, 3, 900_000, 0)
        assert action == "none"
    c, action = on_attempt(c, True, 3, 900_000, 0)  # a success resets the run
    assert c.failures == 0
    for _ in range(2):
        c, _ = on_attempt(c, False, 3, 900_000, 0)
    c, action = on_attempt(c, False, 3, 900_000, 5)
    assert action == "open" and c.open and c.probe_at == 900_005
    assert not probe_due(c, 900_004) and probe_due(c, 900_005)
    c, action = on_attempt(c, False, 3, 900_000, 10)
    assert action == "none" and c.open
    _, action = on_attempt(c, True, 3, 900_000, 20)
    assert action == "close"


def test_breaker_expires_after_disable_after() -> None:
    c = Circuit(failures=20, opened_at=1000, probe_at=2000)
    assert not expired(c, 259_200_000, 259_200_999)
    assert expired(c, 259_200_000, 259_201_000)
    assert not expired(Circuit(), 1, 10**12)


@pytest.mark.parametrize(
    ("events", "subjects", "expected"),
    [
        (None, None, True),
        (frozenset({"user.created"}), None, True),
        (frozenset({"user.deleted"}), None, False),
        (None, [{"issuer_id": "i_1"}], True),
        (None, [{"issuer_id": "i_2"}, {"user_id": "usr_1"}], True),
        (None, [{"issuer_id": "i_1", "user_id": "usr_2"}], False),
    ],
)
def test_event_and_subject_filters(
    events: frozenset[str] | None, subjects: list[dict[str, str]] | None, expected: bool
) -> None:
    subject = {"account_id": "acc_1", "issuer_id": "i_1", "user_id": "usr_1"}
    assert matches("user.created", subject, events, subjects) is expected


class _Policy(msgspec.Struct, frozen=True):
    webhooks_allow_insecure: bool
    webhooks_allow_private: bool


@pytest.mark.parametrize(
    ("ip", "private_allowed", "expected"),
    [
        ("93.184.216.34", False, True),
        ("127.0.0.1", False, False),
        ("127.0.0.1", True, True),
        ("10.1.2.3", True, True),
        ("169.254.169.254", True, False),
        ("::ffff:127.0.0.1", False, False),
        ("0.0.0.0", True, False),
        ("fd00:ec2::254", True, False),
        ("not-an-address", True, False),
    ],
)
def test_delivery_time_address_guard(ip: str, private_allowed: bool, expected: bool) -> None:
    allowed = address_guard(
        _Policy(webhooks_allow_insecure=True, webhooks_allow_private=private_allowed)
    )
    assert allowed(ip) is expected
