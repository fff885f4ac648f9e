"""The gateway's ASGI layers in front of every Core API route, outermost first: rate limit,
authentication (with the `{account_id}` path check), idempotency keys. They run after routing
(an unknown path is a 404 before anything else) and skip routes marked `opt={ANONYMOUS: True}`
(the rate limit only those that name no `RATE_CLASS`).
Guards (scopes) and the handler run inside them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request
from litestar.datastructures import Headers
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from authpi.errors import Conflict, InvalidRequest, Unprocessable
from authpi.gateway.caches.accounts import AccountLookup
from authpi.gateway.edge.account_path import check_account_path
from authpi.gateway.edge.authn import Authenticator
from authpi.gateway.edge.idempotency import (
    MAX_STORED_BODY,
    Claimed,
    IdempotencyStore,
    InProgress,
    Mismatch,
    Stored,
    fingerprint,
    resource_of,
)
from authpi.gateway.edge.ratelimit import TokenBuckets
from authpi.observability import bind_contextvars
from authpi.web.opts import ANONYMOUS, RATE_CLASS, READ, WRITE, RateClass
from authpi.web.principal import Principal, principal_of, set_principal

IDEMPOTENT_METHODS = frozenset({"POST", "PATCH"})
MAX_KEY_LENGTH = 256
# Response headers kept for a replay besides the body (core-api.md 7, open point 4).
REPLAYED_HEADERS = frozenset({"content-type", "etag", "location"})


def client_ip(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


class RateLimitLayer(ASGIMiddleware):
    """Every credentialed route, and the anonymous ones that name their class: a public route
    that works for anyone (the x402 facilitator) is limited per client address like the rest;
    health and /openapi.json are not."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, buckets: TokenBuckets) -> None:
        self.buckets = buckets

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        opt = scope["route_handler"].opt
        if not opt.get(ANONYMOUS) or RATE_CLASS in opt:
            self.buckets.take(client_ip(scope) or "-", rate_class(scope))
        await next_app(scope, receive, send)


def rate_class(scope: Scope) -> RateClass:
    chosen = scope["route_handler"].opt.get(RATE_CLASS)
    if chosen is not None:
        return chosen  # type: ignore[no-any-return]
    return READ if scope["method"] in ("GET", "HEAD") else WRITE


class AuthenticationLayer(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)
    exclude_opt_key = ANONYMOUS

    def __init__(self, authenticator: Authenticator, accounts: AccountLookup) -> None:
        self.authenticator = authenticator
        self.accounts = accounts

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        await self.resolve(scope)
        await next_app(scope, receive, send)

    async def resolve(self, scope: Scope) -> Principal:
        """The request's principal, checked against the path's `{account_id}`, kept on the scope
        and in the request's log context (also run by the direct reads, direct_reads)."""
        authorization = header(scope, b"authorization")
        principal = await self.authenticator.authenticate(authorization, client_ip(scope))
        principal = await check_account_path(principal, scope["path_params"], self.accounts)
        set_principal(scope, principal)
        bind_contextvars(
            account_id=principal.account_id, actor=principal.key_id or principal.user_id
        )
        return principal


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name` (lower case, as ASGI servers give them), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


class KeyInProgress(Conflict):
    retryable = True


class IdempotencyLayer(ASGIMiddleware):
    """POST and PATCH with an `Idempotency-Key`: run once, replay the stored 2xx response
    (byte-identical, plus `Idempotent-Replayed: true`). Records belong to one principal in one
    account, and the route's guards (scopes) run before anything is claimed or replayed: a
    credential that lost a scope gets 403, never the stored response."""

    scopes = (ScopeType.HTTP,)
    exclude_opt_key = ANONYMOUS

    def __init__(self, store: IdempotencyStore) -> None:
        self.store = store

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        key = Headers.from_scope(scope).get("idempotency-key")
        if key is None or scope["method"] not in IDEMPOTENT_METHODS:
            await next_app(scope, receive, send)
            return
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            raise InvalidRequest(
                "Idempotency-Key must be 1 to 256 characters", reason="idempotency.bad_key"
            )
        request: Request[Any, Any, Any] = Request(scope, receive)
        await scope["route_handler"].authorize_connection(request)
        body = await request.body()  # cached on the scope: the handler reads it again
        principal = principal_of(request)
        owner_of = (principal.account_id, principal.credential_id())
        fp = fingerprint(scope["method"], scope["path"], body)
        claim = await self.store.claim(*owner_of, key, fp)
        match claim:
            case Claimed(owner):
                await self._run_once(scope, receive, send, next_app, (*owner_of, key, owner))
            case Stored():
                await _replay(claim, send)
            case Mismatch():
                raise Unprocessable(
                    "Idempotency-Key has already been used with a different request body",
                    reason="idempotency.mismatch",
                )
            case InProgress():
                raise KeyInProgress(
                    "A request with this Idempotency-Key is currently being processed",
                    reason="idempotency.in_progress",
                    retry_after=1,
                )

    async def _run_once(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        next_app: ASGIApp,
        claim: tuple[str, str, str, uuid.UUID],
    ) -> None:
        async def settle(outcome: Stored | None) -> None:
            if outcome is None:
                await self.store.release(*claim)
            else:
                resource = resource_of(scope["path_params"], outcome.body)
                await self.store.complete(*claim, outcome, resource)

        recorder = _Recorder(send, settle)
        try:
            await next_app(scope, receive, recorder.send)
        finally:
            if not recorder.settled:
                await asyncio.shield(self.store.release(*claim))


class _Recorder:
    """Holds the response until the claim is settled (completed for a 2xx, else released), so
    that a client retrying right after the response already finds the key settled."""

    def __init__(self, send: Send, settle: Callable[[Stored | None], Awaitable[None]]) -> None:
        self._send = send
        self._settle = settle
        self._held: list[Message] = []
        self.status = 0
        self.settled = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        self._held.append(message)
        if message["type"] != "http.response.body" or message.get("more_body", False):
            return
        outcome = self._stored() if 200 <= self.status < 300 else None
        await asyncio.shield(self._settle(outcome))
        self.settled = True
        held, self._held = self._held, []
        for each in held:
            await self._send(each)

    def _stored(self) -> Stored:
        start, *chunks = self._held
        body = b"".join(m.get("body", b"") for m in chunks)
        headers = [
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in start.get("headers", [])
            if name.decode("latin-1").lower() in REPLAYED_HEADERS
        ]
        if len(body) > MAX_STORED_BODY:  # replayed with the status only (core-api.md 2.4)
            headers = [(n, v) for n, v in headers if n != "content-type"]
            body = b""
        return Stored(status=self.status, headers=headers, body=body)


async def _replay(stored: Stored, send: Send) -> None:
    headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in stored.headers]
    headers.append((b"content-length", str(len(stored.body)).encode()))
    headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body, "more_body": False})
