"""`GET /{issuer_id}/sso/discover` (idp-api.md 10.2): reads the `Authpi-Portal` header and the
`email` query parameter, hands them to the protocol endpoint and encodes its answer; errors are
`{error, error_description}` bodies."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import get
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery, HeaderParameter

from authpi.observability import get_logger
from authpi.token.caches.issuer_keys import KeyCache
from authpi.token.endpoints.discovery import issuer_url
from authpi.token.endpoints.errors import ServerError, UnknownIssuer
from authpi.token.endpoints.sso import SsoDiscoveryEndpoint
from authpi.web.oauth import OAuthError, RawResponse, error_response, json_response

log = get_logger("authpi.token.api")


class SsoDiscovery(msgspec.Struct, kw_only=True, omit_defaults=True):
    """`{"sso": false}`, or where the hosted login page sends the address instead of asking
    for a password."""

    sso: bool
    org_id: str | None = None
    connection_type: str | None = None
    redirect_url: str | None = None


def sso_routes(keys: KeyCache, endpoint: SsoDiscoveryEndpoint, idp_base: str) -> list[Any]:
    @get(
        "/{issuer_id:str}/sso/discover",
        operation_id="discoverSso",
        summary="Discover SSO for an email (portal only)",
        description="Requires the Authpi-Portal header issued by the hosted login portal.",
        responses={
            200: ResponseSpec(
                data_container=SsoDiscovery, description="The answer", generate_examples=False
            )
        },
    )
    async def discover(
        issuer_id: FromPath[str],
        email: FromQuery[str | None] = None,
        portal: Annotated[
            str | None,
            HeaderParameter(name="Authpi-Portal", description="The portal-origin token"),
        ] = None,
    ) -> RawResponse:
        realm = issuer_url(idp_base, issuer_id)
        try:
            issuer = keys.get(issuer_id)
            if issuer is None or issuer.status != "active":
                raise UnknownIssuer()
            answer = await endpoint.discover(issuer_id, portal, email)
        except OAuthError as exc:
            return error_response(exc, realm)
        except Exception:
            log.exception("oauth.server_error", issuer_id=issuer_id)
            return error_response(ServerError(), realm)
        return json_response(answer)

    return [discover]
