"""IdP discovery routes (idp-api.md 3, 13.2, 13.4): the OpenID Provider metadata, the same
document as OAuth authorization-server metadata (RFC 8414, both at the issuer path and at the
RFC's well-known prefix), and the issuer's JWKS. The documents come from the protocol endpoints
(authpi.token.endpoints.discovery, .jwks); this module only maps them to litestar routes."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Response, get
from litestar.params import FromPath

from authpi.token.caches.issuer_keys import KeyCache
from authpi.token.endpoints import discovery
from authpi.token.endpoints.discovery import OpenIDConfiguration
from authpi.token.endpoints.jwks import IssuerJWKS, jwks_answer


def discovery_routes(cache: KeyCache, configured_base: str) -> list[Any]:
    def metadata(issuer_id: str) -> Response[OpenIDConfiguration]:
        doc = discovery.metadata(cache, configured_base, issuer_id)
        return Response(doc, headers=dict(discovery.HEADERS), media_type=MediaType.JSON)

    @get(
        "/{issuer_id:str}/.well-known/openid-configuration",
        operation_id="getOpenIdConfiguration",
        sync_to_thread=False,
    )
    def openid_configuration(
        issuer_id: FromPath[str],
    ) -> Response[OpenIDConfiguration]:
        return metadata(issuer_id)

    @get(
        "/{issuer_id:str}/.well-known/oauth-authorization-server",
        operation_id="getOAuthAuthorizationServerMetadata",
        sync_to_thread=False,
    )
    def oauth_metadata(
        issuer_id: FromPath[str],
    ) -> Response[OpenIDConfiguration]:
        return metadata(issuer_id)

    @get(
        "/.well-known/oauth-authorization-server/{issuer_id:str}",
        operation_id="getOAuthAuthorizationServerMetadataRfc8414",
        sync_to_thread=False,
    )
    def oauth_metadata_rfc8414(
        issuer_id: FromPath[str],
    ) -> Response[OpenIDConfiguration]:
        """The RFC 8414 section 3.1 location: the well-known suffix inserted before the path."""
        return metadata(issuer_id)

    @get("/{issuer_id:str}/jwks.json", operation_id="getIssuerJwks", sync_to_thread=False)
    def jwks(request: Request[Any, Any, Any], issuer_id: FromPath[str]) -> Response[IssuerJWKS]:
        answer = jwks_answer(cache, issuer_id, request.headers.get("if-none-match"))
        if answer.not_modified:
            return Response(b"", status_code=304, headers=answer.headers)
        return Response(answer.document, headers=answer.headers, media_type=MediaType.JSON)  # type: ignore[arg-type]

    return [openid_configuration, oauth_metadata, oauth_metadata_rfc8414, jwks]
