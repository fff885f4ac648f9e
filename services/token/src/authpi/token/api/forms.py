"""Reading the parameters of a machine-endpoint request off the wire (/token, /introspect,
/revoke): the HTTP side of idp-api.md 1.5 and RFC 6749 section 3.2, before any protocol code runs.

Form encoding is canonical and JSON is accepted; any other media type is 415
`invalid_content_type`. Bodies are capped at 64 KiB, which no legitimate request comes near. The
parameter rules themselves (no repeats, no control characters) are the protocol's
(authpi.token.endpoints.params)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

import msgspec

from authpi.token.endpoints.errors import InvalidContentType, InvalidRequest
from authpi.token.endpoints.params import REPEATABLE, Form, checked_form
from authpi.web.body import too_deep

MAX_BODY = 64 * 1024
MAX_FIELDS = 64
_json_body = msgspec.json.Decoder(dict[str, Any])


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


async def read_form(scope: Any, receive: Any) -> Form:
    """The parameters of a request from its ASGI scope and channel."""
    media, length, authorization = _headers(scope)
    if media not in ("application/x-www-form-urlencoded", "application/json"):
        raise InvalidContentType("use Content-Type: application/x-www-form-urlencoded")
    body = await read_body(receive, length)
    values: dict[str, list[str]] = {}
    if media == "application/json":
        for name, value in _parse_json(body).items():
            values[name] = value if isinstance(value, list) else [value]
    else:
        for name, value in parse_form(body):
            values.setdefault(name, []).append(value)
    client = scope.get("client")
    return checked_form(values, authorization, client[0] if client else None)


def content_length(scope: Any) -> str | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.decode("latin-1")
    return None


async def read_body(receive: Any, length: str | None, limit: int = MAX_BODY) -> bytes:
    """The request body straight from the ASGI channel: refused by its Content-Length before a
    byte is read, and as soon as it passes `limit` (a chunked body has no length to check
    first). Every IdP route that reads a body reads it here."""
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise InvalidRequest("request body too large", status=413)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise InvalidRequest("the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise InvalidRequest("request body too large", status=413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_form(body: bytes) -> list[tuple[str, str]]:
    """`application/x-www-form-urlencoded` pairs, exactly as `urllib.parse.parse_qsl` with
    strict UTF-8, no blank values and at most MAX_FIELDS fields reads them, but a pair with no
    `%` or `+` (every pair of a usual token request) is taken as it is instead of unquoted."""
    try:
        text = body.decode("utf-8")
        if text.count("&") >= MAX_FIELDS:
            raise ValueError("too many fields")
        pairs: list[tuple[str, str]] = []
        for pair in text.split("&"):
            name, sep, value = pair.partition("=")
            if not sep or not value:
                continue  # no `=`, or a blank value: parse_qsl drops both
            name = _unquote(name)
            pairs.append((name, _plain(value) if name in _PLAIN else _unquote(value)))
        return pairs
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest("the body is not valid form encoding") from exc


# Parameters that are never secret and that a client sends the same way request after request
# (an encoded resource URL, its scope): their decoded values are remembered, a bounded number of
# short ones (once full, nothing more is added: no eviction for a flood of distinct values to
# drive). Secrets, codes and tokens are never kept here.
_PLAIN = frozenset({"grant_type", "scope", "resource"})
_PLAIN_DECODED: dict[str, str] = {}
_PLAIN_KEPT = 1024
_PLAIN_LONGEST = 512


def _plain(text: str) -> str:
    decoded = _PLAIN_DECODED.get(text)
    if decoded is None:
        decoded = _unquote(text)
        if len(_PLAIN_DECODED) < _PLAIN_KEPT and len(text) <= _PLAIN_LONGEST:
            _PLAIN_DECODED[text] = decoded
    return decoded


def _unquote(text: str) -> str:
    """`unquote_plus(text, errors="strict")`, with the usual shapes of a token request (no `%`,
    or `%XX` escapes of ASCII such as an encoded resource URL) decoded without its regular
    expression and per-run decoding."""
    if "%" not in text:
        return text.replace("+", " ") if "+" in text else text
    if not text.isascii():
        return unquote_plus(text, errors="strict")
    parts = text.replace("+", " ").split("%")
    out = [parts[0]]
    for part in parts[1:]:
        code = _HEX_BYTE.get(part[:2])
        if code is None or code > 0x7F:  # not an escape, or one of a multi-byte character
            return unquote_plus(text, errors="strict")
        out.append(chr(code))
        out.append(part[2:])
    return "".join(out)


_HEX_BYTE = {
    f"{a}{b}": int(f"{a}{b}", 16)
    for a in "0123456789abcdefABCDEF"
    for b in "0123456789abcdefABCDEF"
}


def _parse_json(body: bytes) -> dict[str, str | list[str]]:
    if too_deep(body):  # before any parser sees it (authpi.web.body)
        raise InvalidRequest("the body nests too deeply")
    try:
        raw = _json_body.decode(body)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise InvalidRequest("the body is not a JSON object") from exc
    if len(raw) > MAX_FIELDS:
        raise InvalidRequest("too many parameters")
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
            raise InvalidRequest(f"parameter {name!r} must be a string")
    return out
