"""The machine endpoints of an issuer: POST /token (client_credentials), /introspect (RFC 7662)
and /revoke (RFC 7009). Errors are RFC 6749 section 5.2 bodies (`error`, `error_description`),
never the Core API envelope, and never a 500 for anything a client can send."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.params import FromPath

from authpi.observability import get_logger
from authpi.token.api.discovery import issuer_url
from authpi.token.cache import IssuerKeys, KeyCache
from authpi.token.grants import ClientCredentialsGrant
from authpi.token.oauth import ClientAuthenticator, presented_credentials, read_form
from authpi.token.revocation import Revocations, TokenVerifier
from authpi.web.oauth import OAuthError, RawResponse, error_response, json_response

log = get_logger("authpi.token.api")
AGENT_PREFIX = "agt_"
GRANTS_LATER = frozenset({"authorization_code", "refresh_token"})
INACTIVE = {"active": False}


class MachineEndpoints:
    def __init__(
        self,
        *,
        idp_base: str,
        keys: KeyCache,
        auth: ClientAuthenticator,
        client_credentials: ClientCredentialsGrant,
        verifier: TokenVerifier,
        revocations: Revocations,
    ) -> None:
        self.idp_base = idp_base
        self.keys = keys
        self.auth = auth
        self.client_credentials = client_credentials
        self.verifier = verifier
        self.revocations = revocations

    def issuer(self, issuer_id: str) -> IssuerKeys:
        entry = self.keys.get(issuer_id)
        if entry is None or entry.status != "active":
            raise OAuthError("not_found", "unknown issuer", status=404)
        return entry

    async def token(self, request: Request[Any, Any, Any], issuer_id: str) -> dict[str, Any]:
        issuer = self.issuer(issuer_id)
        form = await read_form(request)
        grant = form.get("grant_type")
        if grant is None:
            raise OAuthError("invalid_request", "grant_type is required")
        if grant != "client_credentials":
            if grant in GRANTS_LATER:
                raise OAuthError(
                    "unsupported_grant_type", f"{grant} is not available on this server yet"
                )
            raise OAuthError("unsupported_grant_type", "unsupported grant_type")
        creds = presented_credentials(form)
        if creds.client_id.startswith(AGENT_PREFIX):
            agent, verifier_id = await self.auth.agent(issuer_id, creds)
            return self.client_credentials.issue_agent(issuer, agent, verifier_id, form)
        client = await self.auth.confidential(issuer_id, creds)
        return self.client_credentials.issue(issuer, client, form)

    async def introspect(self, request: Request[Any, Any, Any], issuer_id: str) -> dict[str, Any]:
        issuer = self.issuer(issuer_id)
        form = await read_form(request)
        client = await self.auth.confidential(issuer_id, presented_credentials(form))
        token = form.get("token")
        if not token:
            raise OAuthError("invalid_request", "token is required")
        claims = self.verifier.verify(issuer, token)
        if claims is None or claims.get("client_id") != client.id:
            return INACTIVE
        if await self.revocations.is_revoked(str(claims.get("jti", ""))):
            return INACTIVE
        return {"active": True, **claims}

    async def revoke(self, request: Request[Any, Any, Any], issuer_id: str) -> dict[str, Any]:
        issuer = self.issuer(issuer_id)
        form = await read_form(request)
        client = await self.auth.confidential(issuer_id, presented_credentials(form))
        token = form.get("token")
        if not token:
            raise OAuthError("invalid_request", "token is required")
        claims = self.verifier.verify(issuer, token)
        if claims is not None and claims.get("client_id") == client.id:
            await self.revocations.revoke(issuer, client, claims)
        return {}

    def routes(self) -> list[Any]:
        endpoints = self

        async def answer(request: Request[Any, Any, Any], issuer_id: str, handler: Any) -> Any:
            try:
                return json_response(await handler(request, issuer_id))
            except OAuthError as exc:
                return error_response(exc, issuer_url(endpoints.idp_base, issuer_id))
            except Exception:
                log.exception("oauth.server_error", issuer_id=issuer_id)
                return error_response(
                    OAuthError("server_error", "unexpected error", status=500),
                    issuer_url(endpoints.idp_base, issuer_id),
                )

        @post("/{issuer_id:str}/token", operation_id="token", status_code=200)
        async def token(request: Request[Any, Any, Any], issuer_id: FromPath[str]) -> RawResponse:
            return await answer(request, issuer_id, endpoints.token)  # type: ignore[no-any-return]

        @post("/{issuer_id:str}/introspect", operation_id="introspect", status_code=200)
        async def introspect(
            request: Request[Any, Any, Any], issuer_id: FromPath[str]
        ) -> RawResponse:
            return await answer(request, issuer_id, endpoints.introspect)  # type: ignore[no-any-return]

        @post("/{issuer_id:str}/revoke", operation_id="revoke", status_code=200)
        async def revoke(request: Request[Any, Any, Any], issuer_id: FromPath[str]) -> RawResponse:
            return await answer(request, issuer_id, endpoints.revoke)  # type: ignore[no-any-return]

        return [token, introspect, revoke]
