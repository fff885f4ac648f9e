"""Forwarding (the distributed topology, DESIGN.md 5): the innermost Core API layer sends a
request whose route belongs to a service in another process (`opt[SERVICE]`, authpi.web.routes)
to that service's internal listener (AUTHPI_SERVICE_URLS), with the principal the layers before
it resolved, signed (authpi.web.edge), and relays the answer as it is.

aiohttp, not httpx: its client parses HTTP in C (llhttp) and keeps far less Python per request,
so the hop costs a fraction of httpx's (h11, pure Python) on the same keep-alive pool. One
session per process, one pool of keep-alive connections per service; no cookies are kept, no
redirect is followed, bodies are passed through undecoded. The credentials (`Authorization`)
stay at the gateway: the service gets the principal instead."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from litestar import Request
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from yarl import URL

from authpi.errors import TemporarilyUnavailable
from authpi.observability import REQUEST_ID, get_logger
from authpi.web.edge import PRINCIPAL_HEADER, SIGNATURE_HEADER, EdgeSigner, target_of
from authpi.web.opts import SERVICE
from authpi.web.principal import principal_or_none

log = get_logger("authpi.gateway.forward")

TIMEOUT_S = 60.0  # a write waits up to messaging.sync.WRITE_WAIT_S for the deployment's caches
POOL_SIZE = 512  # connections per service and process
# Hop-by-hop headers (RFC 9110 7.6.1), the length (set again), and what only the gateway reads.
_NOT_FORWARDED = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
        b"transfer-encoding", b"upgrade", b"host", b"content-length", b"expect",
        b"authorization", b"x-request-id", PRINCIPAL_HEADER, SIGNATURE_HEADER,
    }
)  # fmt: skip
_NOT_RETURNED = frozenset(
    {
        b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"date",
        b"server", b"x-request-id",
    }
)  # fmt: skip
_SAFE = frozenset({"GET", "HEAD"})  # retried once on a keep-alive connection the peer closed


class Forwarder:
    def __init__(self, urls: Mapping[str, str], signer: EdgeSigner) -> None:
        self.urls = {name: url.rstrip("/") for name, url in urls.items()}
        self.services = frozenset(self.urls)
        self.signer = signer
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=0, limit_per_host=POOL_SIZE, keepalive_timeout=15, ttl_dns_cache=30
                ),
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            )  # fmt: skip
        return self._session

    async def run(self, stop: asyncio.Event) -> None:
        """Worker task: closes the pool when the process stops."""
        try:
            await stop.wait()
        finally:
            if self._session is not None:
                await self._session.close()
                self._session = None

    async def forward(self, scope: Scope, receive: Receive, send: Send, service: str) -> None:
        body = await Request[Any, Any, Any](scope, receive).body()
        request_id = REQUEST_ID.get() or ""
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in scope["headers"]
            if name not in _NOT_FORWARDED
        ]
        headers.append(("x-request-id", request_id))
        principal = principal_or_none(scope)

        def signed() -> list[tuple[str, str]]:  # anew for each attempt: a signature counts once
            return [*headers, *self.signer.headers(scope, request_id, body, principal, to=service)]

        url = URL(self.urls[service] + target_of(scope), encoded=True)
        status, answer, payload = await self._exchange(scope["method"], url, signed, body)
        await send({"type": "http.response.start", "status": status, "headers": answer})
        await send({"type": "http.response.body", "body": payload, "more_body": False})

    async def _exchange(
        self,
        method: str,
        url: URL,
        signed: Callable[[], list[tuple[str, str]]],
        body: bytes,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        attempts = 2 if method in _SAFE else 1
        for attempt in range(attempts):
            try:
                async with self.session().request(
                    method, url, headers=signed(), data=body, allow_redirects=False
                ) as response:
                    payload = await response.read()
                    answer = [
                        (name.lower(), value)
                        for name, value in response.raw_headers
                        if name.lower() not in _NOT_RETURNED
                    ]
                    answer.append((b"content-length", str(len(payload)).encode()))
                    return response.status, answer, payload
            except aiohttp.ServerDisconnectedError:
                if attempt + 1 < attempts:
                    continue
                raise _unavailable(url, "disconnected") from None
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise _unavailable(url, type(exc).__name__) from None
        raise _unavailable(url, "no attempt")


def _unavailable(url: URL, cause: str) -> TemporarilyUnavailable:
    log.warning("forward.failed", service_url=str(url.origin()), cause=cause)
    return TemporarilyUnavailable(
        "the service is not reachable; try again", reason="forward.unreachable", retry_after=1
    )


class ForwardLayer(ASGIMiddleware):
    """Innermost: a route of a service in `services` is forwarded instead of handled here."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, forwarder: Forwarder, services: frozenset[str]) -> None:
        self.forwarder = forwarder
        self.services = services

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        service = scope["route_handler"].opt.get(SERVICE)
        if service in self.services:
            await self.forwarder.forward(scope, receive, send, service)
        else:
            await next_app(scope, receive, send)
