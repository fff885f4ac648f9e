"""The Core API read benchmark's floor (tests.bench.bench_reads): bare litestar handlers doing the
authentication of each measured route and nothing else, under the HTTP server the platform uses
(uvicorn with httptools on uvloop):

- `GET /v1/me`, `GET .../users/{user_id}` and `GET .../users`: Basic authentication with an API
  key (its id looked up in a dict, the secret's SHA-256 digest compared in constant time), then
  the body the platform answered for the same request, encoded again by litestar;
- `POST /{issuer_id}/introspect`: Basic client authentication (SHA-256 digest compare), the form
  parsed, the token's ES256 signature verified with the issuer's public key (once per token: the
  verified claims are kept in a dict by the exact token string, as the platform keeps them), the
  claims checked (issuer, expiry, client) and RFC 7662's answer encoded.

No gateway layers, no rate limits, no request ids, no metrics, no caches kept by events, no
revocation look-up: what the platform spends per request beyond this is the cost of its request
path. Configured from the environment: BARE_READS (a JSON document written by the bench)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import jwt
from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import NotAuthorizedException

from authpi.token.signing.keys import verify_jwt


class Floor:
    def __init__(self, config: dict[str, Any]) -> None:
        self.key_id: str = config["key_id"]
        self.key_sha256: str = config["key_sha256"]
        self.client_id: str = config["client_id"]
        self.client_sha256: str = config["client_sha256"]
        self.issuer: str = config["issuer"]
        self.bodies: dict[str, Any] = config["bodies"]  # scenario -> the platform's answer
        self.keys = {k["kid"]: jwt.PyJWK(k) for k in config["jwks"]["keys"]}
        self.verified: dict[str, dict[str, Any]] = {}  # token -> its verified claims

    def api_key(self, request: Request[Any, Any, Any]) -> None:
        key_id, secret = _basic(request.headers.get("authorization", ""))
        presented = hashlib.sha256(secret.encode()).hexdigest()
        if key_id != self.key_id or not hmac.compare_digest(presented, self.key_sha256):
            raise NotAuthorizedException()

    def introspect(self, authorization: str, body: bytes) -> dict[str, Any]:
        client_id, secret = _basic(authorization)
        presented = hashlib.sha256(unquote_plus(secret).encode()).hexdigest()
        if unquote_plus(client_id) != self.client_id or not hmac.compare_digest(
            presented, self.client_sha256
        ):
            raise NotAuthorizedException()
        form = dict(parse_qsl(body.decode(), max_num_fields=64))
        token = form.get("token", "")
        claims = self.verified.get(token)
        if claims is None:
            try:
                _, claims = verify_jwt(token, self.keys)
            except ValueError:
                return {"active": False}
            if len(self.verified) < 10_000:
                self.verified[token] = claims
        if (
            claims.get("iss") != self.issuer
            or claims.get("client_id") != self.client_id
            or int(claims["exp"]) <= time.time()
        ):
            return {"active": False}
        return {"active": True, **claims, "token_type": "access_token"}


def _basic(authorization: str) -> tuple[str, str]:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise NotAuthorizedException()
    name, _, secret = base64.b64decode(value).decode().partition(":")
    return name, secret


def build(floor: Floor) -> Litestar:
    @get("/v1/me", sync_to_thread=False)
    def me(request: Request[Any, Any, Any]) -> dict[str, Any]:
        floor.api_key(request)
        return floor.bodies["me"]  # type: ignore[no-any-return]

    @get("/v1/accounts/{account_id:str}/issuers/{issuer_id:str}/users", sync_to_thread=False)
    def list_users(request: Request[Any, Any, Any], account_id: str, issuer_id: str) -> Any:
        floor.api_key(request)
        return floor.bodies["list_users"]

    @get(
        "/v1/accounts/{account_id:str}/issuers/{issuer_id:str}/users/{user_id:str}",
        sync_to_thread=False,
    )
    def get_user(
        request: Request[Any, Any, Any], account_id: str, issuer_id: str, user_id: str
    ) -> Any:
        floor.api_key(request)
        return floor.bodies["get_user"]

    @post("/{issuer_id:str}/introspect", status_code=200)
    async def introspect(request: Request[Any, Any, Any], issuer_id: str) -> Response[Any]:
        answer = floor.introspect(request.headers.get("authorization", ""), await request.body())
        return Response(answer, headers={"cache-control": "no-store"})

    return Litestar([me, list_users, get_user, introspect], debug=False, logging_config=None)


def _from_env() -> Litestar | None:
    config = os.environ.get("BARE_READS")
    return build(Floor(json.loads(config))) if config else None


app = _from_env()  # uvicorn imports `tests.bench.bare_reads:app`
