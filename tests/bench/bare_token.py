"""The token benchmark's floor (tests.bench.bench_peer): a bare client_credentials endpoint doing
the token endpoint's own work and nothing else, as a plain ASGI app under the HTTP server the
platform uses (uvicorn with httptools on uvloop): Basic client authentication, the secret's
SHA-256 digest compared in constant time, the form parsed, an ES256 JWT access token signed with
the platform's own `sign_jwt`, and a JSON reply.

No framework, no request ids, no metrics, no throttling, no facts, no caches kept by events: what
the platform spends per token beyond this is the cost of its request path. One client, from the
environment: BARE_CLIENT_ID, BARE_SECRET_SHA256 (hex), BARE_KEY_PEM (a PKCS#8 P-256 key),
BARE_ISSUER."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import msgspec
from cryptography.hazmat.primitives import serialization

from authpi.crypto.ids import base62_secret
from authpi.token.signing.keys import PrivateKey, sign_jwt

TTL = 1800
_encode = msgspec.json.Encoder().encode
_JSON_HEADERS = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"no-store"),
    (b"pragma", b"no-cache"),
]


class Reply(msgspec.Struct):
    access_token: str
    token_type: str
    expires_in: int
    scope: str


class Bare:
    def __init__(self, client_id: str, secret_sha256: str, key: PrivateKey, issuer: str) -> None:
        self.client_id = client_id
        self.digest = secret_sha256
        self.key = key
        self.issuer = issuer

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        authorization = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        status, payload = self.answer(authorization, body)
        headers = [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def answer(self, authorization: bytes, body: bytes) -> tuple[int, bytes]:
        scheme, _, value = authorization.partition(b" ")
        if scheme.lower() != b"basic":
            return 401, b'{"error":"invalid_client"}'
        client_id, _, secret = base64.b64decode(value).decode().partition(":")
        presented = hashlib.sha256(unquote_plus(secret).encode()).hexdigest()
        if unquote_plus(client_id) != self.client_id or not hmac.compare_digest(
            presented, self.digest
        ):
            return 401, b'{"error":"invalid_client"}'
        form = dict(parse_qsl(body.decode(), max_num_fields=64))
        if form.get("grant_type") != "client_credentials":
            return 400, b'{"error":"unsupported_grant_type"}'
        scope = form.get("scope", "")
        iat = int(time.time())
        claims = {
            "iss": self.issuer, "sub": self.client_id, "aud": form.get("resource", self.client_id),
            "exp": iat + TTL,
            "iat": iat, "auth_time": iat, "jti": base62_secret(13), "client_id": self.client_id,
            "scope": scope,
        }  # fmt: skip
        token = sign_jwt(self.key, "k_bare", "ES256", claims, "at+jwt")
        return 200, _encode(Reply(token, "Bearer", TTL, scope))


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _from_env() -> Bare | None:
    pem = os.environ.get("BARE_KEY_PEM")
    if not pem:
        return None
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    return Bare(
        os.environ["BARE_CLIENT_ID"], os.environ["BARE_SECRET_SHA256"], key,  # type: ignore[arg-type]
        os.environ.get("BARE_ISSUER", "http://127.0.0.1/bare"),
    )  # fmt: skip


app = _from_env()  # uvicorn's workers import `tests.bench.bare_token:app`
