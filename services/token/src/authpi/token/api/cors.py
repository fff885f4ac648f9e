"""CORS on the IdP port (idp-api.md 14 #31; the rules are in authpi.token.endpoints.cors): the
preflight routes, and the headers an actual cross-origin answer of /token, /revoke or /userinfo
gets. A request without an Origin header is answered exactly as before."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, route
from litestar.params import FromPath

from authpi.token.endpoints.cors import PUBLIC, CorsOrigins
from authpi.web.oauth import RawResponse

# path -> the methods a browser may use cross-origin there
CREDENTIALED = {
    "/{issuer_id:str}/token": "POST",
    "/{issuer_id:str}/revoke": "POST",
    "/{issuer_id:str}/userinfo": "GET, POST",
}
DOCUMENTS = ("/{issuer_id:str}/.well-known/openid-configuration", "/{issuer_id:str}/jwks.json")


def origin_of(scope: Any) -> str | None:
    """The Origin header from the raw headers (the token endpoint never builds litestar's
    header mapping)."""
    for name, value in scope["headers"]:
        if name == b"origin":
            return value.decode("latin-1")
    return None


def add_cors(raw: RawResponse, cors: CorsOrigins, scope: Any, issuer_id: str) -> RawResponse:
    origin = origin_of(scope)
    if origin is not None:
        for name, value in cors.response_headers(issuer_id, origin).items():
            raw.headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    return raw


def cors_routes(cors: CorsOrigins) -> list[Any]:
    def preflight(path: str, methods: str) -> Any:
        @route(
            path, http_method=["OPTIONS"], include_in_schema=False, status_code=204,
            name=f"preflight:{path}", sync_to_thread=False,
        )  # fmt: skip
        def answer(request: Request[Any, Any, Any], issuer_id: FromPath[str]) -> Response[None]:
            status, headers = cors.preflight(
                issuer_id,
                request.headers.get("origin"),
                request.headers.get("access-control-request-method"),
                methods,
            )
            return Response(None, status_code=status, headers=headers)

        return answer

    def public(path: str) -> Any:
        @route(
            path, http_method=["OPTIONS"], include_in_schema=False, status_code=204,
            name=f"preflight:{path}", sync_to_thread=False,
        )  # fmt: skip
        def answer(issuer_id: FromPath[str]) -> Response[None]:
            headers = {
                **PUBLIC,
                "Access-Control-Allow-Methods": "GET",
                "Access-Control-Allow-Headers": "If-None-Match",
                "Access-Control-Max-Age": "600",
            }
            return Response(None, status_code=204, headers=headers)

        return answer

    return [preflight(p, m) for p, m in CREDENTIALED.items()] + [public(p) for p in DOCUMENTS]
