"""The OAuth side of the machine endpoints (/token, /introspect, /revoke): strict request parsing,
client authentication (the RFC 6749 error responses are in authpi.web.oauth).

Parsing rules (idp-api.md 1.5, RFC 6749 section 3.2): form encoding is canonical and JSON is
accepted; any other media type is 415 `invalid_content_type`. A parameter sent twice is
`invalid_request` (except `resource`, which RFC 8707 makes repeatable). Bodies are capped at
64 KiB, which no legitimate request comes near.

Client authentication (idp-api.md 5.2): `client_secret_basic` or `client_secret_post`, never both
and never with two different ids. Secrets are compared as SHA-256 digests in constant time
(DESIGN.md 6 explains why not Argon2); a rotated secret keeps working until its grace ends.
Failures are throttled per (client, source address) with backoff (authpi.token.lockout): a
throttled pair gets 429 with Retry-After, before any look-up. Every other refusal, whether the
id is unknown, of another issuer, inactive, public, or the secret wrong, is the same 401 after
the same work (one digest compare, one counted failure), so answers and timing do not tell
which client ids exist."""

from __future__ import annotations

import base64
import hmac
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import msgspec
from litestar import Request

from authpi.crypto.clock import Clock
from authpi.crypto.ids import sha256_hex
from authpi.messaging.entries import EntryCache
from authpi.token.agents import AgentEntry
from authpi.token.clients import ClientEntry
from authpi.token.lockout import Lockouts
from authpi.web.body import too_deep
from authpi.web.oauth import OAuthError, invalid_client

MAX_BODY = 64 * 1024
MAX_FIELDS = 64
REPEATABLE = frozenset({"resource"})
_json_body = msgspec.json.Decoder(dict[str, Any])


class Form:
    """The parameters of one request; `get` refuses a parameter given twice. It also keeps the
    request's Authorization header (client_secret_basic) and client address (throttling)."""

    __slots__ = ("_values", "authorization", "source")

    def __init__(
        self,
        values: dict[str, list[str]],
        authorization: str | None = None,
        source: str | None = None,
    ) -> None:
        self._values = values
        self.authorization = authorization
        self.source = source

    def get(self, name: str) -> str | None:
        values = self._values.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise OAuthError("invalid_request", f"parameter {name!r} was given more than once")
        return values[0]

    def all(self, name: str) -> list[str]:
        return self._values.get(name, [])


def _headers(scope: Any) -> tuple[str, str | None, str | None]:
    """(media type, content-length, authorization) from one pass over the raw headers."""
    media, length, authorization = "", None, None
    for name, value in scope["headers"]:
        if name == b"content-type":
            media = value.decode("latin-1").split(";", 1)[0].strip().lower()
        elif name == b"content-length":
            length = value.decode("latin-1")
        elif name == b"authorization":
            authorization = value.decode("latin-1")
    return media, length, authorization


async def read_form(request: Request[Any, Any, Any]) -> Form:
    media, length, authorization = _headers(request.scope)
    if media not in ("application/x-www-form-urlencoded", "application/json"):
        raise OAuthError(
            "invalid_content_type",
            "use Content-Type: application/x-www-form-urlencoded",
            status=415,
        )
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise OAuthError("invalid_request", "request body too large", status=413)
    body = await _read_body(request.receive)
    values: dict[str, list[str]] = {}
    if media == "application/json":
        for name, value in _parse_json(body).items():
            values[name] = value if isinstance(value, list) else [value]
    else:
        for name, value in _parse_form(body):
            values.setdefault(name, []).append(value)
    for name, vals in values.items():
        if len(vals) > 1 and name not in REPEATABLE:
            raise OAuthError("invalid_request", f"parameter {name!r} was given more than once")
        if any(not v.isprintable() for v in vals):
            raise OAuthError("invalid_request", f"parameter {name!r} has control characters")
    client = request.scope.get("client")
    return Form(values, authorization, client[0] if client else None)


async def _read_body(receive: Any) -> bytes:
    """The request body straight from the ASGI channel, refused as soon as it passes MAX_BODY
    (a chunked body has no Content-Length to check first)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise OAuthError("invalid_request", "the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise OAuthError("invalid_request", "request body too large", status=413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _parse_form(body: bytes) -> list[tuple[str, str]]:
    try:
        text = body.decode("utf-8")
        return parse_qsl(
            text,
            keep_blank_values=False,
            strict_parsing=False,
            max_num_fields=MAX_FIELDS,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise OAuthError("invalid_request", "the body is not valid form encoding") from exc


def _parse_json(body: bytes) -> dict[str, str | list[str]]:
    if too_deep(body):  # before any parser sees it (authpi.web.body)
        raise OAuthError("invalid_request", "the body nests too deeply")
    try:
        raw = _json_body.decode(body)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise OAuthError("invalid_request", "the body is not a JSON object") from exc
    if len(raw) > MAX_FIELDS:
        raise OAuthError("invalid_request", "too many parameters")
    out: dict[str, str | list[str]] = {}
    for name, value in raw.items():
        if isinstance(value, str):
            out[name] = value
        elif (
            name in REPEATABLE
            and isinstance(value, list)
            and all(isinstance(v, str) for v in value)
        ):
            out[name] = value
        else:
            raise OAuthError("invalid_request", f"parameter {name!r} must be a string")
    return out


class Credentials(msgspec.Struct, frozen=True):
    client_id: str
    secret: str | None
    basic: bool
    source: str | None = None  # the client address (authpi.web.addresses)


def presented_credentials(form: Form) -> Credentials:
    """The client's credentials from exactly one method (RFC 6749 section 2.3.1)."""
    header = form.authorization
    body_id, body_secret = form.get("client_id"), form.get("client_secret")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            raise invalid_client("unsupported Authorization scheme; use Basic", basic=True)
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except ValueError as exc:  # non-ASCII text, bad base64 or bad UTF-8
            raise invalid_client("malformed Basic credentials", basic=True) from exc
        raw_id, sep, raw_secret = decoded.partition(":")
        if not sep or not raw_id:
            raise invalid_client("malformed Basic credentials", basic=True)
        client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        if body_secret is not None:
            raise invalid_client("use one client authentication method, not two", basic=True)
        if body_id is not None and body_id != client_id:
            raise invalid_client("client_id does not match the Basic credentials", basic=True)
        return Credentials(client_id, secret, True, form.source)
    if body_id is None:
        raise invalid_client("client authentication is required")
    return Credentials(body_id, body_secret, False, form.source)


THROTTLED = "too many failed authentication attempts; retry later"
# Compared against when there is nothing to compare against, so that an unknown id costs the
# same digest compare as a known one.
_NO_DIGESTS = {"": "0" * 64}


def throttled(retry_after: int) -> OAuthError:
    return OAuthError("rate_limited", THROTTLED, status=429, retry_after=retry_after)


class ClientAuthenticator:
    def __init__(
        self,
        clients: EntryCache[ClientEntry],
        agents: EntryCache[AgentEntry],
        lockouts: Lockouts,
        clock: Clock,
    ) -> None:
        self.clients = clients
        self.agents = agents
        self.lockouts = lockouts
        self.clock = clock

    async def agent(self, issuer_id: str, creds: Credentials) -> tuple[AgentEntry, str]:
        """An active agent of this issuer and the id of the secret verifier that matched
        (platform.md 3.3: any of its secret verifiers), or invalid_client."""
        self._unthrottled(issuer_id, creds)
        agent = self.agents.get(creds.client_id)
        usable = agent is not None and agent.issuer_id == issuer_id and agent.status == "active"
        verifier = await self._verify(issuer_id, creds, agent.secrets if agent and usable else {})
        assert agent is not None  # _verify refuses an empty set of digests
        return agent, verifier

    async def confidential(self, issuer_id: str, creds: Credentials) -> ClientEntry:
        """An active confidential client of this issuer whose secret matches, or invalid_client.
        Every refusal reads the same, so a caller learns nothing about which check failed."""
        self._unthrottled(issuer_id, creds)
        client = self.clients.get(creds.client_id)
        usable = (
            client is not None
            and client.issuer_id == issuer_id
            and client.status == "active"
            and client.confidential
        )
        await self._verify(issuer_id, creds, self._digests(client) if client and usable else {})
        assert client is not None  # _verify refuses an empty set of digests
        return client

    def _digests(self, client: ClientEntry) -> dict[str, str]:
        digests = {"current": client.secret_sha256} if client.secret_sha256 else {}
        if (
            client.previous_sha256
            and client.previous_valid_until is not None
            and client.previous_valid_until > self.clock.now_ms()
        ):
            digests["previous"] = client.previous_sha256  # the rotation grace
        return digests

    def _unthrottled(self, issuer_id: str, creds: Credentials) -> None:
        """A (client, source) pair in backoff is refused before anything is looked up."""
        retry_after = self.lockouts.retry_after(issuer_id, creds.client_id, creds.source)
        if retry_after:
            raise throttled(retry_after)

    async def _verify(self, issuer_id: str, creds: Credentials, digests: dict[str, str]) -> str:
        """Which of `digests` the presented secret matches; a miss (no digests at all included:
        an unknown or unusable id) counts one failure for the (client id, source) pair."""
        if creds.secret is None:
            raise invalid_client(basic=creds.basic)
        presented = sha256_hex(creds.secret)
        matched = None
        for name, digest in (digests or _NO_DIGESTS).items():  # every one: no early exit to time
            if hmac.compare_digest(presented, digest):
                matched = name
        if matched is not None and digests:
            await self.lockouts.succeeded(issuer_id, creds.client_id, creds.source)
            return matched
        retry_after = await self.lockouts.failed(issuer_id, creds.client_id, creds.source)
        if retry_after:
            raise throttled(retry_after)
        raise invalid_client(basic=creds.basic)
