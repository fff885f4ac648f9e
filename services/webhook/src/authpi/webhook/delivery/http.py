"""A lean HTTP/1.1 client for webhook POSTs: one request, the status, `Retry-After` and at most
the first 4 KiB of the body. Connections are kept alive per (scheme, host, port) and reused when
a response was read to its end. A new connection resolves the host and connects only to an
address the SSRF guard accepts (platform.md 7.1); a literal address is checked the same way.

Written for the delivery engine's rate (thousands of attempts a second in one process), where a
general client's per-request cost dominates; it sends what 7.4 needs and nothing more."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

import msgspec

MAX_HEAD = 64 * 1024  # status line and headers
DRAIN_LIMIT = 64 * 1024  # a longer body is not read to its end: the connection is closed
IDLE_S = 20.0  # idle connections older than this are not reused
MAX_IDLE_PER_ORIGIN = 1024  # above the overall concurrency: a busy origin keeps its connections


class HttpError(Exception):
    """An attempt that got no usable response: `kind` is the delivery's `last_error`."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(detail or kind)
        self.kind = kind


class Response(msgspec.Struct, frozen=True):
    status: int
    retry_after: str | None
    body: bytes  # at most `keep` bytes


class _Conn:
    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def close(self) -> None:
        self.writer.close()

    def usable(self, now: float) -> bool:
        return (
            not self.reader.at_eof()
            and not self.writer.is_closing()
            and now - self.idle_since < IDLE_S
        )


Origin = tuple[str, str, int]  # scheme, host, port


class Client:
    def __init__(self, allowed: Callable[[str], bool]) -> None:
        self.allowed = allowed
        self._idle: dict[Origin, deque[_Conn]] = defaultdict(deque)
        self._tls: ssl.SSLContext | None = None

    async def close(self) -> None:
        for pool in self._idle.values():
            for conn in pool:
                conn.close()
        self._idle.clear()

    async def post(self, url: str, headers: Mapping[str, str], body: bytes, keep: int) -> Response:
        origin, target, host_header = _parse(url)
        head = _request_head(target, host_header, headers, len(body))
        conn, reused = self._take(origin), True
        if conn is None:
            conn, reused = await self._connect(origin), False
        try:
            response, reusable = await _exchange(conn, head + body, keep)
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            conn.close()
            if not reused:
                raise HttpError("connect_error", str(e)) from e
            # A kept-alive connection the receiver had closed: once more on a new one.
            conn = await self._connect(origin)
            try:
                response, reusable = await _exchange(conn, head + body, keep)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            conn.close()
            raise
        if reusable:
            self._give(origin, conn)
        else:
            conn.close()
        return response

    def _take(self, origin: Origin) -> _Conn | None:
        pool = self._idle.get(origin)
        now = time.monotonic()
        while pool:
            conn = pool.pop()
            if conn.usable(now):
                return conn
            conn.close()
        return None

    def _give(self, origin: Origin, conn: _Conn) -> None:
        pool = self._idle[origin]
        if len(pool) >= MAX_IDLE_PER_ORIGIN:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        pool.append(conn)

    async def _connect(self, origin: Origin) -> _Conn:
        scheme, host, port = origin
        addresses = await self._addresses(host, port)
        tls = self._context() if scheme == "https" else None
        last: Exception | None = None
        for family, address in addresses:
            try:
                reader, writer = await asyncio.open_connection(
                    address, port, family=family, ssl=tls,
                    server_hostname=host.strip("[]") if tls else None,
                )  # fmt: skip
            except ssl.SSLError as e:
                raise HttpError("tls_error", str(e)) from e
            except OSError as e:
                last = e
                continue
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return _Conn(reader, writer)
        raise HttpError("connect_error", str(last) if last else "no address") from last

    async def _addresses(self, host: str, port: int) -> list[tuple[int, str]]:
        """The addresses to connect to, every one checked by the guard."""
        literal = host.strip("[]")
        try:
            ip = ipaddress.ip_address(literal)
        except ValueError:
            ip = None
        if ip is not None:
            if not self.allowed(str(ip)):
                raise HttpError("forbidden_address", f"{ip} is not a permitted target")
            family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            return [(family, str(ip))]
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as e:
            raise HttpError("connect_error", f"cannot resolve {host}") from e
        found: list[tuple[int, str]] = []
        for family, _, _, _, sockaddr in infos:
            address = str(sockaddr[0])
            if (family, address) not in found:
                found.append((family, address))
        kept = [(f, a) for f, a in found if self.allowed(a)]
        if not kept:
            raise HttpError("forbidden_address", f"{host} resolves to no permitted address")
        return kept

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls


@functools.lru_cache(maxsize=4096)
def _parse(url: str) -> tuple[Origin, str, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise HttpError("connect_error", "not an http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise HttpError("connect_error", "credentials in the URL")
    default = 443 if scheme == "https" else 80
    port = parts.port or default
    host = parts.hostname
    bracketed = f"[{host}]" if ":" in host else host
    host_header = bracketed if port == default else f"{bracketed}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (scheme, bracketed, port), target, host_header


def _request_head(target: str, host: str, headers: Mapping[str, str], length: int) -> bytes:
    lines = [f"POST {target} HTTP/1.1", f"Host: {host}", f"Content-Length: {length}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    text = "\r\n".join(lines) + "\r\n\r\n"
    if any(c in text[:-4].replace("\r\n", "") for c in "\r\n\x00"):
        raise HttpError("connect_error", "a header carries a line break")
    return text.encode("latin-1")


async def _exchange(conn: _Conn, request: bytes, keep: int) -> tuple[Response, bool]:
    """Send, read the response; the flag says whether the connection may be reused."""
    conn.writer.write(request)
    await conn.writer.drain()
    while True:
        version, status, headers = await _read_head(conn.reader)
        if not 100 <= status < 200:
            break  # 1xx (e.g. 103 Early Hints) precede the real response
    body, complete = await _read_body(conn.reader, status, headers, keep)
    persistent = headers.get("connection", "").lower()
    keep_alive = persistent == "keep-alive" if version == "HTTP/1.0" else persistent != "close"
    reusable = complete and keep_alive
    return Response(status=status, retry_after=headers.get("retry-after"), body=body), reusable


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, int, dict[str, str]]:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as e:
        raise HttpError("connect_error", "response head too long") from e
    if len(raw) > MAX_HEAD:
        raise HttpError("connect_error", "response head too long")
    lines = raw.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/1."):
        raise HttpError("connect_error", "not an HTTP/1.x response")
    try:
        status = int(status_line[1])
    except ValueError:
        raise HttpError("connect_error", "bad status line") from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return status_line[0], status, headers


async def _read_body(
    reader: asyncio.StreamReader, status: int, headers: dict[str, str], keep: int
) -> tuple[bytes, bool]:
    """At most `keep` bytes of the body, and whether it was read to its end."""
    if status in (204, 304):
        return b"", True
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await _read_chunked(reader, keep)
    length_text = headers.get("content-length")
    if length_text is not None:
        try:
            length = int(length_text)
        except ValueError:
            return b"", False
        if length <= DRAIN_LIMIT:
            data = await reader.readexactly(length)
            return data[:keep], True
        return await reader.readexactly(keep), False
    # Delimited by the end of the connection: read what is kept, then close.
    data = bytearray()
    while len(data) < keep:
        chunk = await reader.read(keep - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data), False


async def _read_chunked(reader: asyncio.StreamReader, keep: int) -> tuple[bytes, bool]:
    data = bytearray()
    total = 0
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            return bytes(data[:keep]), False
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return bytes(data[:keep]), True
        total += size
        if total > DRAIN_LIMIT:
            return bytes(data[:keep]), False
        chunk = await reader.readexactly(size + 2)
        if len(data) < keep:
            data += chunk[:-2]
