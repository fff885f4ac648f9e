"""RFC 6749 section 5.2 responses of the IdP port's machine endpoints (token, introspection,
revocation, keyinfo): `{error, error_description}` bodies with no-store caching and, on 401, a
WWW-Authenticate challenge. Responses are bare ASGI apps: these endpoints build their bodies
themselves, so litestar's response machinery is skipped on the hot path."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.web.headers import url_text

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_encode = msgspec.json.Encoder().encode
_NO_STORE_HEADERS = [
    (b"content-type", b"application/json"),
    *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in NO_STORE.items()),
]


class RawResponse:
    """A finished JSON response as a bare ASGI app."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = (
            list(_NO_STORE_HEADERS)  # the usual answer, encoded once (a copy: CORS appends)
            if headers is NO_STORE
            else [(b"content-type", b"application/json")]
            + [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


class OAuthError(Exception):
    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        basic: bool = False,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.basic = basic  # the client tried HTTP Basic: answer with a Basic challenge
        self.retry_after = retry_after  # seconds, sent as Retry-After (429)


def invalid_client(description: str = "Client authentication failed", **kw: Any) -> OAuthError:
    return OAuthError("invalid_client", description, status=401, **kw)


def error_response(exc: OAuthError, realm: str) -> RawResponse:
    headers = dict(NO_STORE)
    if exc.status == 401:
        scheme = "Basic" if exc.basic or exc.error == "invalid_client" else "Bearer"
        # The realm names the issuer from the request's path: escaped (authpi.web.headers).
        headers["WWW-Authenticate"] = f'{scheme} realm="{url_text(realm)}", error="{exc.error}"'
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    body = _encode({"error": exc.error, "error_description": exc.description})
    return RawResponse(exc.status, body, headers)


def json_response(payload: dict[str, Any], status: int = 200) -> RawResponse:
    return RawResponse(status, _encode(payload), NO_STORE)
