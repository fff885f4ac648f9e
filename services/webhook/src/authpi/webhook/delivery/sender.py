"""One delivery attempt over HTTP (platform.md 7.4-7.6): the CloudEvents envelope around the
public event, the headers, the signature, and a POST through a keep-alive pool with a 10 s limit
and no redirects followed. The host is resolved on every new connection and only addresses the
SSRF guard accepts are connected to; a literal address is checked before anything is sent."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import msgspec
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from authpi.webhook.delivery.registry import Credentials, Target
from authpi.webhook.delivery.signing import signature_header
from authpi.webhook.domain.delivery import BODY_LIMIT, Outcome, http_outcome

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


def body_of(webhook_id: str, a: Attempt) -> bytes:
    event = _decoder.decode(a.event)
    ordered = {k: event[k] for k in _EVENT_KEYS if k in event}
    ordered.update((k, v) for k, v in event.items() if k not in ordered)
    return _encoder.encode(
        Envelope(
            id=a.delivery_id,
            source=SOURCE_PREFIX + webhook_id,
            time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(a.occurred_at // 1000)),
            data=msgspec.Raw(_encoder.encode(ordered)),
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


class ForbiddenAddress(OSError):
    """The host resolved only to addresses the SSRF guard refuses."""


class CheckedResolver(AbstractResolver):
    """Resolves like the system does, then keeps only the addresses the guard accepts: the
    connection is made to an address that was checked, never to a second lookup's answer."""

    def __init__(self, allowed: Callable[[str], bool]) -> None:
        self._allowed = allowed
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        kept = [r for r in found if self._allowed(r["host"])]
        if not kept:
            raise ForbiddenAddress(f"{host} resolves to no permitted address")
        return kept

    async def close(self) -> None:
        await self._inner.close()


class Sender:
    """One per process: a keep-alive pool shared by every webhook (aiohttp, opened lazily in the
    running loop)."""

    def __init__(
        self,
        allowed: Callable[[str], bool],
        *,
        timeout_s: float = 10.0,
        max_connections: int = 512,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.allowed = allowed
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self.wall = wall
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections,
                limit_per_host=0,
                resolver=CheckedResolver(self.allowed),
                ttl_dns_cache=10,
                keepalive_timeout=30,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                trust_env=False,
                skip_auto_headers=("Accept-Encoding", "Accept"),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, target: Target, creds: Credentials, a: Attempt) -> Outcome:
        started = time.monotonic()
        body = body_of(target.id, a)
        headers = headers_of(target, creds, a, body, int(self.wall()))
        try:
            url = URL(target.url)
            host = url.raw_host or ""
            if _is_literal(host) and not self.allowed(host):
                return _failed("forbidden_address", started)
            try:
                return await self._post(url, body, headers, started)
            except aiohttp.ServerDisconnectedError:
                # A pooled connection the receiver had closed: once more on a fresh one.
                return await self._post(url, body, headers, started)
        except (TimeoutError, asyncio.TimeoutError, aiohttp.ServerTimeoutError):
            return _failed("timeout", started)
        except (aiohttp.ClientSSLError, aiohttp.ClientConnectorCertificateError):
            return _failed("tls_error", started)
        except aiohttp.ClientConnectorError as e:
            forbidden = isinstance(e.os_error, ForbiddenAddress)
            return _failed("forbidden_address" if forbidden else "connect_error", started)
        except (aiohttp.ClientError, OSError, ValueError):
            return _failed("connect_error", started)

    async def _post(
        self, url: URL, body: bytes, headers: dict[str, str], started: float
    ) -> Outcome:
        async with self._client().post(
            url, data=body, headers=headers, allow_redirects=False
        ) as resp:
            kept = bytearray()
            while len(kept) <= BODY_LIMIT:
                chunk = await resp.content.read(BODY_LIMIT + 1 - len(kept))
                if not chunk:
                    break
                kept += chunk
            return http_outcome(
                resp.status,
                bytes(kept),
                resp.headers.get("Retry-After"),
                int(self.wall() * 1000),
                _ms_since(started),
            )


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _failed(error: str, started: float) -> Outcome:
    return Outcome(success=False, error=error, duration_ms=_ms_since(started))


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
