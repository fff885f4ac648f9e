"""Read-your-writes on the Core API (DESIGN.md 3): the outermost layer records the events a write
request commits, and holds its 2xx response until every cache and projection of the deployment
that those events concern has applied them (messaging.sync), bounded by `WRITE_WAIT_S`. So the
next request of any kind, on any process (IdP workers included), sees the write: a new issuer's
discovery, a new client's or verifier's token, a suspension or a revocation refusing at once."""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from authpi.eventstore.store import recording_writes
from authpi.messaging.sync import Sync

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ReadYourWritesLayer(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, sync: Sync) -> None:
        self.sync = sync

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["method"] in READ_METHODS:
            await next_app(scope, receive, send)
            return
        with recording_writes() as written:

            async def send_once_applied(message: Message) -> None:
                if message["type"] == "http.response.start" and message["status"] < 300:
                    if written:
                        await self.sync.wait_applied(list(written))
                        written.clear()
                await send(message)

            await next_app(scope, receive, send_once_applied)
