"""The gateway's signed principal (distributed topology, DESIGN.md 5): the gateway authenticates
a Core API request, then forwards it to the owning service with the principal it resolved in
`X-Authpi-Principal`, signed in `X-Authpi-Signature`. A service's internal listener serves only
requests that carry a valid signature (`signed_only`), and takes the principal from it.

What is signed binds the principal to one request: the method, the path and query, the request
id (`X-Request-Id`), a digest of the body, the time it was signed and the service it is for (a
request that reaches another service's listener, by a misconfigured URL or a port two listeners
share, is refused rather than answered by the wrong service). A signature is valid for
`VALIDITY_MS` and accepted once per process, so it cannot be replayed onto another request, nor
again onto the same one; a write's (any method but GET and HEAD) is also taken once by the whole
service (`WriteClaims`, a row in the service's own schema), so a captured write cannot be played
again at another replica either. The key is derived from the KEK (HKDF, its own label): every
configured KEK gives one, the gateway signs with each and a service accepts any it also holds,
so a KEK rotation never needs both sides to change at the same moment."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, cast

import msgspec
import psycopg
from litestar.types import (
    ASGIApp,
    HTTPReceiveMessage,
    Receive,
    Scope,
    Send,
    WebSocketReceiveMessage,
)
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from authpi.crypto.clock import Clock
from authpi.crypto.envelope import Kek
from authpi.errors import AuthpiError, InvalidRequest, TemporarilyUnavailable, Unauthorized
from authpi.observability import bind_contextvars, get_logger
from authpi.web.errors import send_error
from authpi.web.principal import Principal, set_principal

LABEL = "authpi.gateway-principal.v1"
PRINCIPAL_HEADER = b"x-authpi-principal"
SIGNATURE_HEADER = b"x-authpi-signature"
VALIDITY_MS = 10_000  # covers the forwarding hop and a little clock skew between hosts
MAX_BODY = 1_048_576  # the Core API's own bound (authpi.web.app `request_max_body_size`)
_SAFE = frozenset({"GET", "HEAD"})  # taken once per process only: they change nothing
PRUNE_EVERY = 512  # claims between two prunings of the claimed signatures
log = get_logger("authpi.web.edge")


class Signed(msgspec.Struct, frozen=True, array_like=True):
    """What the gateway vouches for: this request, at this time, by this principal (None on an
    anonymous route)."""

    method: str
    target: str  # path, and `?query` when there is one
    request_id: str
    body_sha256: str
    signed_at: int  # epoch milliseconds
    principal: Principal | None
    service: str  # the one service whose listener may take it


_decode = msgspec.json.Decoder(Signed).decode


def keys_of(kek: Kek) -> dict[str, bytes]:
    return kek.hkdf_each(LABEL)


def _http(scope: Scope) -> dict[str, Any]:
    # Litestar types the scope as a union of TypedDicts; only HTTP scopes reach this module.
    return cast("dict[str, Any]", scope)


def target_of(scope: Scope) -> str:
    http = _http(scope)
    raw: bytes = http.get("raw_path") or http["path"].encode()
    query: bytes = http.get("query_string", b"")
    return (raw + b"?" + query if query else raw).decode("latin-1")


def statement_id(signed: Signed) -> str:
    """What "once" counts: the signed statement itself, not the header that carries its MACs
    (that header can be reordered, padded or given extra entries and still verify)."""
    return hashlib.sha256(msgspec.json.encode(signed)).hexdigest()


def _mac(key: bytes, payload: bytes) -> str:
    return base64.urlsafe_b64encode(hmac.digest(key, payload, "sha256")).rstrip(b"=").decode()


class EdgeSigner:
    """The gateway's side: the two headers that vouch for one forwarded request."""

    def __init__(self, keys: Mapping[str, bytes], clock: Clock) -> None:
        self.keys = dict(keys)
        self.clock = clock

    def headers(
        self, scope: Scope, request_id: str, body: bytes, principal: Principal | None, *, to: str
    ) -> list[tuple[str, str]]:
        """The headers for `scope` sent to service `to`."""
        signed = Signed(
            method=_http(scope)["method"], target=target_of(scope), request_id=request_id,
            body_sha256=hashlib.sha256(body).hexdigest(), signed_at=self.clock.now_ms(),
            principal=principal, service=to,
        )  # fmt: skip
        payload = msgspec.json.encode(signed)
        macs = ",".join(f"{kid}={_mac(key, payload)}" for kid, key in self.keys.items())
        encoded = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
        return [(PRINCIPAL_HEADER.decode(), encoded), (SIGNATURE_HEADER.decode(), macs)]


class EdgeVerifier:
    """A service's side: the principal of a request the gateway signed for one of `services`
    (those this process serves), or a refusal."""

    def __init__(
        self,
        keys: Mapping[str, bytes],
        clock: Clock,
        services: frozenset[str],
        validity_ms: int = VALIDITY_MS,
    ) -> None:
        self.keys = dict(keys)
        self.clock = clock
        self.services = services
        self.validity_ms = validity_ms
        self._seen: OrderedDict[str, int] = OrderedDict()  # signature -> signed_at

    def verify(self, scope: Scope, body: bytes) -> Principal | None:
        """The principal of a signed request (None on an anonymous route), or a refusal."""
        headers = dict(scope["headers"])
        return self.check_request(scope, headers, self.check_headers(headers), body)[0]

    def check_request(
        self, scope: Scope, headers: Mapping[bytes, bytes], signed: Signed, body: bytes
    ) -> tuple[Principal | None, str]:
        """The request's principal and its statement id (what "once" counts), once the request
        is the one signed and the first use of its statement in this process."""
        if signed.method != _http(scope)["method"] or signed.target != target_of(scope):
            raise _refused("the signature is for another request", "edge.other_request")
        if signed.request_id != headers.get(b"x-request-id", b"").decode("latin-1"):
            raise _refused("the signature is for another request", "edge.other_request_id")
        if not hmac.compare_digest(signed.body_sha256, hashlib.sha256(body).hexdigest()):
            raise _refused("the signature is for another request body", "edge.other_body")
        statement = statement_id(signed)
        self._once(statement, signed.signed_at)
        return signed.principal, statement

    def check_headers(self, headers: Mapping[bytes, bytes]) -> Signed:
        """The signed statement, once its signature, its age and its form are good (the body
        is checked apart: it is read only after this)."""
        encoded, macs = headers.get(PRINCIPAL_HEADER), headers.get(SIGNATURE_HEADER)
        if not encoded or not macs:
            raise _refused(
                "this port answers requests forwarded by the gateway only", "edge.unsigned"
            )
        try:
            payload = base64.urlsafe_b64decode(encoded + b"=" * (-len(encoded) % 4))
        except ValueError:
            raise _refused("malformed gateway signature", "edge.malformed") from None
        if not self._authentic(payload, macs.decode("latin-1")):
            raise _refused("invalid gateway signature", "edge.bad_signature")
        try:
            signed = _decode(payload)
        except msgspec.DecodeError:
            raise _refused("malformed gateway signature", "edge.malformed") from None
        if signed.service not in self.services:
            raise _refused(
                f"this listener serves {', '.join(sorted(self.services))}, not {signed.service}",
                "edge.other_service",
            )
        age = self.clock.now_ms() - signed.signed_at
        if not -self.validity_ms < age <= self.validity_ms:
            raise _refused("the gateway signature has expired", "edge.expired")
        return signed

    def _authentic(self, payload: bytes, macs: str) -> bool:
        for pair in macs.split(","):
            kid, _, mac = pair.partition("=")
            key = self.keys.get(kid.strip())
            if key is not None and hmac.compare_digest(mac.strip(), _mac(key, payload)):
                return True
        return False

    def _once(self, signature: str, signed_at: int) -> None:
        """Refuse a signature seen before in this process; forget those too old to verify."""
        oldest = self.clock.now_ms() - 2 * self.validity_ms
        while self._seen and next(iter(self._seen.values())) < oldest:
            self._seen.popitem(last=False)
        if signature in self._seen:
            raise _refused("this gateway signature was already used", "edge.replayed")
        self._seen[signature] = signed_at


class WriteClaims:
    """The signatures of writes the replicas of a service have taken, in the service's own
    schema (`edge_signatures`, by the eventstore's migrations): each is taken once by whichever
    replica claims it first. Rows older than twice the validity go as new claims come in."""

    def __init__(
        self, pool: AsyncConnectionPool[Any], namespace: str, validity_ms: int = VALIDITY_MS
    ) -> None:
        self.pool = pool
        self.namespace = namespace
        self.keep = f"{2 * validity_ms} milliseconds"
        self._claims = 0

    async def claim(self, service: str, signature: str) -> bool:
        """True for the first claim of `signature` at `service`. A claim the database cannot
        take (restarting, out of connections) is a retryable 503: the write was not taken, so
        nothing of it is done, and the gateway or the client may send it again."""
        table = sql.Identifier(f"{self.namespace}_{service}", "edge_signatures")
        self._claims += 1
        try:
            async with self.pool.connection() as conn:
                if self._claims % PRUNE_EVERY == 0:
                    await conn.execute(
                        sql.SQL("DELETE FROM {} WHERE seen_at < now() - %s::interval")
                        .format(table), [self.keep],
                    )  # fmt: skip
                cur = await conn.execute(
                    sql.SQL("INSERT INTO {} (mac) VALUES (%s) ON CONFLICT DO NOTHING RETURNING 1")
                    .format(table), [signature],
                )  # fmt: skip
                return await cur.fetchone() is not None
        except (psycopg.OperationalError, PoolTimeout):
            log.warning("edge.claim_unavailable", service=service)
            raise TemporarilyUnavailable(
                "the service cannot take writes right now; try again",
                reason="edge.claim_unavailable", retry_after=1,
            ) from None  # fmt: skip


def _refused(description: str, reason: str) -> Unauthorized:
    return Unauthorized(description, reason=reason)


def signed_only(app: ASGIApp, verifier: EdgeVerifier, claims: WriteClaims | None = None) -> ASGIApp:
    """`app` for a service's internal listener: every HTTP request must carry the gateway's
    valid signature (checked before the body is read, which is then bounded and digested), and
    its principal is the request's; anything else is refused with the spec's error body. With
    `claims`, a write's signature is also taken once by the whole service."""

    async def gate(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        try:
            signed = verifier.check_headers(headers)
            body = await _read_body(receive)
            principal, statement = verifier.check_request(scope, headers, signed, body)
            if claims is not None and signed.method not in _SAFE:
                if not await claims.claim(signed.service, statement):
                    raise _refused("this gateway signature was already used", "edge.replayed")
        except AuthpiError as exc:
            await send_error(send, exc)
            return
        if principal is not None:
            set_principal(scope, principal)
            bind_contextvars(
                account_id=principal.account_id, actor=principal.key_id or principal.user_id
            )
        await app(scope, _replay(body, receive), send)

    return gate


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise InvalidRequest("the request ended early", reason="edge.disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise InvalidRequest("the request body is too large", reason="edge.body_too_large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> HTTPReceiveMessage | WebSocketReceiveMessage:
        nonlocal sent
        if sent:
            return await receive()  # the client's disconnect, when it comes
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
