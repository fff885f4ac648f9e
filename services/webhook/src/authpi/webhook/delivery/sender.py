"""One delivery attempt over HTTP (platform.md 7.4-7.6): the CloudEvents envelope around the
public event, the headers, the signature, and a POST through a keep-alive pool (delivery.http)
with a 10 s limit and no redirects followed (a 3xx is a failed attempt). The host is resolved on
every new connection and only addresses the SSRF guard accepts are connected to."""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Callable
from typing import Any

import msgspec

from authpi.webhook.delivery.http import Client, HttpError
from authpi.webhook.delivery.registry import Credentials, Target
from authpi.webhook.delivery.signing import signature_header
from authpi.webhook.domain.delivery import BODY_LIMIT, Outcome, http_outcome
from authpi.webhook.domain.urls import UrlPolicy, check_target_address

USER_AGENT = "AuthPI-Webhooks/1.0"
SOURCE_PREFIX = "com.authpi.webhooks/v1/"
# The public event's keys in the order of platform.md 6.1 (any others follow).
_EVENT_KEYS = ("spec", "id", "type", "source", "trace", "trigger", "auth", "subject", "timestamp",
               "data")  # fmt: skip


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """CloudEvents 1.0 structured mode (7.4); `id` is the delivery id."""

    specversion: str = "1.0"
    id: str
    source: str
    type: str = "event"
    datacontenttype: str = "application/json"
    time: str
    data: msgspec.Raw


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    delivery_id: str
    event_id: str
    event_type: str
    occurred_at: int
    event: bytes  # the public event's JSON (audit_events.event)
    attempt: int  # the number this attempt is sent as (X-Webhook-Attempt)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(dict[str, Any])


@functools.lru_cache(maxsize=4096)
def _event_json(stored: bytes) -> bytes:
    """The stored event compact, its keys in the order of 6.1; one event goes to many webhooks,
    so it is made once."""
    event = _decoder.decode(stored)
    ordered = {k: event[k] for k in _EVENT_KEYS if k in event}
    ordered.update((k, v) for k, v in event.items() if k not in ordered)
    return _encoder.encode(ordered)


def body_of(webhook_id: str, a: Attempt) -> bytes:
    return _encoder.encode(
        Envelope(
            id=a.delivery_id,
            source=SOURCE_PREFIX + webhook_id,
            time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(a.occurred_at // 1000)),
            data=msgspec.Raw(_event_json(a.event)),
        )
    )


def headers_of(
    target: Target, creds: Credentials, a: Attempt, body: bytes, t: int
) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Webhook-Id": a.delivery_id,
        "X-Webhook-Event-Id": a.event_id,
        "X-Webhook-Event-Type": a.event_type,
        "X-Webhook-Attempt": str(a.attempt),
    }
    if "signature" in target.auth_type and creds.signature_secrets:
        headers["X-Webhook-Signature"] = signature_header(creds.signature_secrets, t, body)
    if "bearer" in target.auth_type and creds.bearer_token:
        headers["Authorization"] = f"Bearer {creds.bearer_token}"
    return headers


def address_guard(policy: UrlPolicy) -> Callable[[str], bool]:
    """Whether an address a target's host resolved to may be connected to (the SSRF guard of
    the registration's URL rules, applied at delivery time)."""

    def allowed(address: str) -> bool:
        try:
            check_target_address(address.split("%", 1)[0], policy)
        except ValueError:  # ForbiddenAddress, or not an address at all
            return False
        return True

    return allowed


class Sender:
    """One per process: a keep-alive pool shared by every webhook."""

    def __init__(
        self,
        allowed: Callable[[str], bool],
        *,
        timeout_s: float = 10.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.timeout_s = timeout_s
        self.wall = wall
        self._client = Client(allowed)

    async def close(self) -> None:
        await self._client.close()

    async def send(self, target: Target, creds: Credentials, a: Attempt) -> Outcome:
        started = time.monotonic()
        body = body_of(target.id, a)
        headers = headers_of(target, creds, a, body, int(self.wall()))
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await self._client.post(target.url, headers, body, BODY_LIMIT + 1)
        except TimeoutError:
            return _failed("timeout", started)
        except HttpError as e:
            return _failed(e.kind, started)
        except ssl.SSLError:
            return _failed("tls_error", started)
        except (OSError, EOFError, asyncio.IncompleteReadError, ValueError):
            return _failed("connect_error", started)
        return http_outcome(
            response.status, response.body, response.retry_after, int(self.wall() * 1000),
            _ms_since(started),
        )  # fmt: skip


def _failed(error: str, started: float) -> Outcome:
    return Outcome(success=False, error=error, duration_ms=_ms_since(started))


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
