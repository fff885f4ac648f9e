"""The machine endpoints of an issuer as litestar routes: POST /token, /introspect (RFC 7662) and
/revoke (RFC 7009). Each route resolves the issuer, reads the request's parameters
(authpi.token.api.forms), hands them to its protocol endpoint (authpi.token.endpoints) and encodes
what comes back. Errors are RFC 6749 section 5.2 bodies (`error`, `error_description`), never the
Core API envelope, and never a 500 for anything a client can send. The same endpoints are also
served as direct routes (authpi.web.direct), answered before litestar's router; these litestar
routes document them and answer what the direct layer leaves to the router."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Request, post
from litestar.params import FromPath
from litestar.types import Receive, Scope, Send

from authpi.observability import get_logger
from authpi.token.api.cors import add_cors
from authpi.token.api.forms import read_form
from authpi.token.caches.issuer_keys import IssuerKeys, KeyCache
from authpi.token.endpoints.cors import CorsOrigins
from authpi.token.endpoints.discovery import issuer_url
from authpi.token.endpoints.errors import ServerError, UnknownIssuer
from authpi.token.endpoints.introspection import IntrospectionEndpoint
from authpi.token.endpoints.params import Form
from authpi.token.endpoints.revocation import RevocationEndpoint
from authpi.token.endpoints.token import TokenEndpoint
from authpi.web.direct import DirectRoute
from authpi.web.oauth import NO_STORE, OAuthError, RawResponse, error_response, json_response

log = get_logger("authpi.token.api")
_encode = msgspec.json.Encoder().encode
# An endpoint's answer: a struct to encode, the encoded body itself, or None for `{}`.
Answer = Callable[[IssuerKeys, Form], Awaitable[msgspec.Struct | bytes | None]]


class MachineEndpoints:
    def __init__(
        self,
        *,
        idp_base: str,
        keys: KeyCache,
        token: TokenEndpoint,
        introspection: IntrospectionEndpoint,
        revocation: RevocationEndpoint,
        cors: CorsOrigins | None = None,
    ) -> None:
        self.idp_base = idp_base
        self.cors = cors  # /token and /revoke answer the origins of public clients
        self.keys = keys
        self.token = token
        self.introspection = introspection
        self.revocation = revocation

    def issuer(self, issuer_id: str) -> IssuerKeys:
        entry = self.keys.get(issuer_id)
        if entry is None or entry.status != "active":
            raise UnknownIssuer()
        return entry

    async def answer(
        self, scope: Scope, receive: Receive, issuer_id: str, endpoint: Answer
    ) -> RawResponse:
        raw = await self._answer(scope, receive, issuer_id, endpoint)
        return raw if self.cors is None else add_cors(raw, self.cors, scope, issuer_id)

    async def _answer(
        self, scope: Scope, receive: Receive, issuer_id: str, endpoint: Answer
    ) -> RawResponse:
        try:
            issuer = self.issuer(issuer_id)
            body = await endpoint(issuer, await read_form(scope, receive))
        except OAuthError as exc:
            return error_response(exc, issuer_url(self.idp_base, issuer_id))
        except Exception:
            log.exception("oauth.server_error", issuer_id=issuer_id)
            return error_response(ServerError(), issuer_url(self.idp_base, issuer_id))
        if body is None:
            return json_response({})
        return RawResponse(200, body if isinstance(body, bytes) else _encode(body), NO_STORE)

    def direct_routes(self) -> dict[str, DirectRoute]:
        """The same three endpoints as `routes`, as plain ASGI before the router
        (authpi.web.direct): a token request skips litestar's machinery."""

        def direct(endpoint: Answer, cors: bool = True) -> DirectRoute:
            answer = self.answer if cors else self._answer

            async def route(scope: Scope, receive: Receive, send: Send, issuer_id: str) -> None:
                raw = await answer(scope, receive, issuer_id, endpoint)
                await raw(scope, receive, send)

            return route

        return {
            "token": direct(self.token.answer),
            "introspect": direct(self.introspection.answer, cors=False),
            "revoke": direct(self.revocation.answer),
        }

    def routes(self) -> list[Any]:
        endpoints = self

        @post("/{issuer_id:str}/token", operation_id="token", status_code=200)
        async def token(request: Request[Any, Any, Any], issuer_id: FromPath[str]) -> RawResponse:
            return await endpoints.answer(
                request.scope, request.receive, issuer_id, endpoints.token.answer
            )

        @post("/{issuer_id:str}/introspect", operation_id="introspect", status_code=200)
        async def introspect(
            request: Request[Any, Any, Any], issuer_id: FromPath[str]
        ) -> RawResponse:
            # Confidential clients only (idp-api.md 14 #22): no CORS.
            return await endpoints._answer(
                request.scope, request.receive, issuer_id, endpoints.introspection.answer
            )

        @post("/{issuer_id:str}/revoke", operation_id="revoke", status_code=200)
        async def revoke(request: Request[Any, Any, Any], issuer_id: FromPath[str]) -> RawResponse:
            return await endpoints.answer(
                request.scope, request.receive, issuer_id, endpoints.revocation.answer
            )

        return [token, introspect, revoke]
