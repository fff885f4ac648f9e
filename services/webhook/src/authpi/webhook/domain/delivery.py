"""The rules of delivering one event to one webhook, without I/O (platform.md 7.3, 7.6, 7.7):
which webhooks an event goes to, what an attempt's outcome means, when the next attempt is due
(backoff with jitter, `Retry-After`), and what the circuit breaker does with a run of failures."""

from __future__ import annotations

import email.utils
from collections.abc import Mapping, Sequence
from typing import Literal

import msgspec

DEFAULT_DELAYS: tuple[int, ...] = (60, 300, 1800, 7200, 21600, 43200, 86400)
JITTER = 0.10  # ±10 % (7.6)
RETRY_AFTER_CAP_S = 86_400  # a Retry-After is honoured up to 24 h (7.6)
RETRY_AFTER_STATUSES = frozenset({429, 503})
BODY_LIMIT = 4096  # response bodies are kept truncated to 4 KiB (7.8)
DELIVERABLE = frozenset({"active", "failing"})  # 7.10: deliveries are created only for these

Status = Literal["pending", "succeeded", "failed", "cancelled"]
STATUSES: tuple[Status, ...] = ("pending", "succeeded", "failed", "cancelled")


def matches(
    event_type: str,
    subject: Mapping[str, object],
    events: frozenset[str] | None,
    subjects: Sequence[Mapping[str, str]] | None,
) -> bool:
    """7.3: exact type names (None = every type); a subject filter matches when any of its
    objects has every key equal in the event's `subject`."""
    if events is not None and event_type not in events:
        return False
    if not subjects:
        return True
    return any(all(subject.get(k) == v for k, v in wanted.items()) for wanted in subjects)


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What one attempt came to."""

    success: bool
    response_status: int | None = None
    error: str | None = (
        None  # timeout | connect_error | tls_error | forbidden_address | http_<code>
    )
    response_body: str | None = None
    retry_after_s: float | None = None  # a 429/503's Retry-After, in seconds from the response
    duration_ms: int = 0


def http_outcome(
    status: int, body: bytes, retry_after: str | None, now_ms: int, duration_ms: int
) -> Outcome:
    """7.6: success is any 2xx; everything else (redirects included) is a failed attempt."""
    ok = 200 <= status < 300
    wait = parse_retry_after(retry_after, now_ms) if status in RETRY_AFTER_STATUSES else None
    return Outcome(
        success=ok,
        response_status=status,
        error=None if ok else f"http_{status}",
        response_body=truncate_body(body),
        retry_after_s=wait,
        duration_ms=duration_ms,
    )


def truncate_body(body: bytes) -> str | None:
    if not body:
        return None
    # Cut at the byte limit without splitting a UTF-8 sequence; undecodable bytes are replaced.
    text = body[:BODY_LIMIT].decode(
        "utf-8", errors="ignore" if len(body) > BODY_LIMIT else "replace"
    )
    while len(text.encode()) > BODY_LIMIT:
        text = text[:-1]
    return text.replace("\x00", "\ufffd")


def parse_retry_after(value: str | None, now_ms: int) -> float | None:
    """Delay-seconds or an HTTP-date (RFC 9110 10.2.3), as seconds from now; None if absent or
    malformed."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_ms / 1000)


def retry_delay_ms(
    attempt: int, delays: Sequence[int], jitter: float, retry_after_s: float | None = None
) -> int:
    """The wait after scheduled attempt `attempt` (1-based) failed: the schedule's delay (its
    last one again past its end) times `1 + jitter`, `jitter` drawn in [-0.1, 0.1]; a longer
    Retry-After wins, capped at 24 h."""
    base = delays[min(attempt, len(delays)) - 1] if delays else 60
    delay = base * (1 + max(-JITTER, min(JITTER, jitter)))
    if retry_after_s is not None and retry_after_s > delay:
        delay = min(retry_after_s, RETRY_AFTER_CAP_S)
    return int(delay * 1000)


class Next(msgspec.Struct, frozen=True, kw_only=True):
    status: Status
    next_attempt_at: int | None


def after_attempt(
    outcome: Outcome,
    scheduled_attempts: int,
    budget: int,
    now_ms: int,
    delays: Sequence[int],
    jitter: float,
) -> Next:
    """A scheduled attempt's effect on its delivery: `scheduled_attempts` counts this one."""
    if outcome.success:
        return Next(status="succeeded", next_attempt_at=None)
    if scheduled_attempts >= budget:
        return Next(status="failed", next_attempt_at=None)
    wait = retry_delay_ms(scheduled_attempts, delays, jitter, outcome.retry_after_s)
    return Next(status="pending", next_attempt_at=now_ms + wait)


class Circuit(msgspec.Struct, frozen=True, kw_only=True):
    """The breaker of one webhook (7.7)."""

    failures: int = 0  # consecutive failed attempts, across deliveries
    opened_at: int | None = None  # None: closed
    probe_at: int | None = None

    @property
    def open(self) -> bool:
        return self.opened_at is not None


BreakerAction = Literal["none", "open", "close"]


def on_attempt(
    circuit: Circuit, success: bool, threshold: int, probe_interval_ms: int, now_ms: int
) -> tuple[Circuit, BreakerAction]:
    """A scheduled attempt (or a probe) finished: count it, and open or close the circuit."""
    if success:
        action: BreakerAction = "close" if circuit.open else "none"
        return Circuit(), action
    failures = circuit.failures + 1
    if circuit.open:
        return msgspec.structs.replace(circuit, failures=failures), "none"
    if failures >= threshold:
        return Circuit(
            failures=failures, opened_at=now_ms, probe_at=now_ms + probe_interval_ms
        ), "open"
    return msgspec.structs.replace(circuit, failures=failures), "none"


def probe_due(circuit: Circuit, now_ms: int) -> bool:
    return circuit.open and circuit.probe_at is not None and now_ms >= circuit.probe_at


def expired(circuit: Circuit, disable_after_ms: int, now_ms: int) -> bool:
    """Failing for longer than `disable_after_seconds`: the webhook is disabled by the system."""
    return circuit.opened_at is not None and now_ms - circuit.opened_at >= disable_after_ms
