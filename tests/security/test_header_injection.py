"""Header values built from input are escaped (DESIGN.md 7, "Hostile input").

An issuer id taken from the path went unescaped into the `WWW-Authenticate` realm: `GET
/%1F/keyinfo` made the HTTP server refuse the response header after the response had started,
and the connection dropped with no answer (a quote or a comma would instead forge challenge
parameters). Every path part below, percent-decoded into control characters, CR/LF, quotes,
backslashes or non-ASCII, must get a complete answer on both ports, whose header values hold
visible ASCII only, with a realm that is one well-formed quoted-string. Requests are written on
raw sockets, so that nothing on the client side cleans them up first."""

from __future__ import annotations

import asyncio
import base64
import re
from urllib.parse import urlsplit

import pytest

HOSTILE = [
    "%1F",
    "%0D%0ASet-Cookie:%20stolen=1",
    "%0A",
    "%22,%20error=%22forged",
    "%5C%22",
    "%C3%A9t%C3%A9",
    "%E2%98%83",
    "%FF%FE",
    "%7F",
    "%00",
    "%09tab",
]
VISIBLE = re.compile(rb"[\t\x20-\x7e]*")
CHALLENGE = re.compile(rb'(Basic|Bearer) realm="((?:[^"\\]|\\.)*)", error="([a-z_]+)"')
BAD_BASIC = "Basic " + base64.b64encode(b"key_nope:secret").decode()


async def raw_request(url: str, request_target: str, headers: dict[str, str] | None = None):
    """(status, [(name, value)]) of one request written byte for byte on a fresh connection."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    lines = [f"GET {request_target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert raw, "the connection dropped with no answer"
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    status = int(head[0].split(b" ")[1])
    fields = [tuple(line.split(b":", 1)) for line in head[1:]]
    return status, [(name.strip().lower(), value.strip()) for name, value in fields]


def assert_clean(fields) -> None:
    names = [name for name, _ in fields]
    assert b"set-cookie" not in names
    for name, value in fields:
        assert VISIBLE.fullmatch(value), (name, value)


@pytest.mark.parametrize("part", HOSTILE)
@pytest.mark.parametrize("authorization", [None, BAD_BASIC])
async def test_keyinfo_realm_is_escaped(platform, part, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    status, fields = await raw_request(platform.idp_url, f"/{part}/keyinfo", headers)
    assert status == 401
    assert_clean(fields)
    challenges = [value for name, value in fields if name == b"www-authenticate"]
    assert len(challenges) == 1
    match = CHALLENGE.fullmatch(challenges[0])
    assert match is not None, challenges[0]
    assert match[3] == b"unauthorized_client"
    assert urlsplit(platform.idp_url).netloc.encode() in match[2]


@pytest.mark.parametrize("part", HOSTILE)
@pytest.mark.parametrize("endpoint", ["token", ".well-known/openid-configuration", "jwks.json"])
async def test_idp_paths_answer_cleanly(platform, part, endpoint):
    status, fields = await raw_request(platform.idp_url, f"/{part}/{endpoint}")
    assert 400 <= status < 500
    assert_clean(fields)


@pytest.mark.parametrize("part", HOSTILE)
@pytest.mark.parametrize("authenticated", [False, True])
async def test_core_api_paths_answer_cleanly(platform, part, authenticated):
    headers = {}
    if authenticated:
        token = f"{platform.api_key_id}:{platform.api_key_secret}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
    for target in (
        f"/v1/accounts/{part}/issuers",
        f"/v1/accounts/{platform.account_id}/issuers/{part}",
    ):
        status, fields = await raw_request(platform.api_url, target, headers)
        assert 400 <= status < 500
        assert_clean(fields)


@pytest.mark.parametrize("port", ["api_url", "idp_url"])
@pytest.mark.parametrize(
    "request_id",
    ["req_\x7f\x7f\x7f\x7f\x7f", 'req_"quoted"', "req_with space", "req_\xe9\xe9\xe9\xe9"],
)
async def test_an_unsafe_request_id_is_not_echoed(platform, port, request_id):
    status, fields = await raw_request(
        getattr(platform, port), "/healthz", {"X-Request-Id": request_id}
    )
    assert_clean(fields)
    if status == 400:  # refused by the HTTP server itself (e.g. DEL): answered all the same
        return
    assert status == 200
    echoed = dict(fields)[b"x-request-id"]
    assert echoed != request_id.encode("latin-1") and echoed.startswith(b"req_")


@pytest.mark.parametrize("port", ["api_url", "idp_url"])
async def test_a_plain_request_id_is_still_echoed(platform, port):
    _, fields = await raw_request(
        getattr(platform, port), "/healthz", {"X-Request-Id": "req_abc.123:x-y"}
    )
    assert dict(fields)[b"x-request-id"] == b"req_abc.123:x-y"
