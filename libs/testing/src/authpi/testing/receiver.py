"""A webhook receiver on 127.0.0.1 for the webhook tests and benchmarks: a small HTTP/1.1
keep-alive server (a raw asyncio Protocol, thousands of requests/s) that records every request
(headers and raw body), answers with scripted statuses, can be blackholed (it accepts and reads,
and never answers) or down (its port closed), and checks every request as a receiver following
platform.md 7.4 and 7.5 would.

The signature check is written from the specification (7.5), on purpose not imported from the
platform's signer: parse `t` and every `v1`, refuse a `t` more than 300 s away, HMAC-SHA256 over
`<t>.` + the raw body with the whole `whs_…` secret as the key, compare in constant time."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

TOLERANCE_SECONDS = 300
_MAX_HEAD = 64 * 1024
_REASONS = {200: "OK", 204: "No Content", 429: "Too Many Requests", 500: "Internal Server Error"}


def verify_signature(
    raw_body: bytes, header: str, secrets: Iterable[str], now: float | None = None
) -> bool:
    """platform.md 7.5, receiver side: any `v1` entry matching an HMAC under any known secret."""
    parts = [p.strip().split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [v for k, v in parts if k == "t"]
    sigs = [v for k, v in parts if k == "v1"]
    if len(stamps) != 1 or not stamps[0].isdigit() or not sigs:
        return False
    ts = stamps[0]
    if abs((time.time() if now is None else now) - int(ts)) > TOLERANCE_SECONDS:
        return False
    signed = ts.encode() + b"." + raw_body
    for secret in secrets:
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(expected.encode(), s.encode()) for s in sigs):
            return True
    return False


@dataclass
class Received:
    """One request as the receiver saw it, with what a careful receiver found wrong in it."""

    at: float  # time.time() when the whole request had arrived
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int | None  # what it answered (None: blackholed)
    problems: list[str] = field(default_factory=list[str])

    @property
    def event_id(self) -> str:
        return self.headers.get("x-webhook-event-id", "")

    @property
    def delivery_id(self) -> str:
        return self.headers.get("x-webhook-id", "")

    @property
    def event_type(self) -> str:
        return self.headers.get("x-webhook-event-type", "")

    @property
    def attempt(self) -> int:
        value = self.headers.get("x-webhook-attempt", "")
        return int(value) if value.isdigit() else 0

    def json(self) -> Any:
        return json.loads(self.body)


class _Conn(asyncio.Protocol):
    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it
        self.receiver.connections.add(self.transport)
        self.receiver.accepted += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.receiver.connections.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self._one():
            pass

    def _one(self) -> bool:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > _MAX_HEAD and self.transport is not None:
                self.transport.close()
            return False
        head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        method, path, _ = [*head[0].split(" ", 2), "", ""][:3]
        headers: dict[str, str] = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        start = end + 4
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parsed = _dechunk(self.buf, start)
            if parsed is None:
                return False
            body, consumed = parsed
        else:
            length = int(headers.get("content-length", "0") or 0)
            if len(self.buf) < start + length:
                return False
            body, consumed = bytes(self.buf[start : start + length]), start + length
        del self.buf[:consumed]
        close = headers.get("connection", "").lower() == "close"
        status = self.receiver.record(method, path, headers, body)
        if status is None or self.transport is None:
            return True  # blackholed: read on, answer never
        reason = _REASONS.get(status, "Status")
        extra = b"Connection: close\r\n" if close else b""
        self.transport.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Length: 2\r\n".encode()
            + b"Content-Type: text/plain\r\n"
            + extra
            + b"\r\nok"
        )
        if close:
            self.transport.close()
        return True


def _dechunk(buf: bytearray, start: int) -> tuple[bytes, int] | None:
    out = bytearray()
    pos = start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            trailer = buf.find(b"\r\n", pos)
            return None if trailer < 0 else (bytes(out), trailer + 2)
        if len(buf) < pos + size + 2:
            return None
        out += buf[pos : pos + size]
        pos += size + 2


class WebhookReceiver:
    """`async with WebhookReceiver() as r:` then register `r.url`; give it the secrets
    (`r.secrets`) and bearer token (`r.bearer`) the platform returned, so it can check them."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, keep: bool = True) -> None:
        self.host = host
        self.port = port
        self.keep = keep  # False: count only (benchmarks that measure the platform, not memory)
        self.requests: list[Received] = []
        self.secrets: list[str] = []
        self.bearer: str | None = None
        self.webhook_id: str | None = None  # when set, the envelope source must name it
        self.default_status = 200
        self.script: deque[int] = deque()
        self.blackholed = False
        self.on_request: Callable[[Received], None] | None = None
        self.connections: set[asyncio.Transport] = set()
        self.accepted = 0
        self.count = 0
        self.problem_count = 0
        self.event_ids: set[str] = set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> WebhookReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hooks"

    async def start(self) -> None:
        """Listen (again: `down()` then `start()` reopens the same port)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Conn(self), self.host, self.port, reuse_address=True, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        """Close the port and every connection: connects are refused until `start()`."""
        if self._server is not None:
            self._server.close()
            for transport in list(self.connections):
                transport.abort()
            await self._server.wait_closed()
            self._server = None

    async def stop(self) -> None:
        await self.down()

    def answer(self, *statuses: int) -> None:
        """Answer the next requests with these statuses, in order, then `default_status`."""
        self.script.extend(statuses)

    def record(self, method: str, path: str, headers: dict[str, str], body: bytes) -> int | None:
        status = None if self.blackholed else (
            self.script.popleft() if self.script else self.default_status
        )  # fmt: skip
        got = Received(time.time(), method, path, headers, body, status)
        got.problems = self.check(got)
        self.count += 1
        self.problem_count += bool(got.problems)
        if got.event_id:
            self.event_ids.add(got.event_id)
        if self.keep:
            self.requests.append(got)
        if self.on_request is not None:
            self.on_request(got)
        return status

    def check(self, got: Received) -> list[str]:
        """What a receiver following platform.md 7.4 and 7.5 would refuse in this request."""
        problems: list[str] = []
        h = got.headers
        if got.method != "POST":
            problems.append(f"method {got.method}")
        if h.get("content-type", "").split(";")[0].strip() != "application/json":
            problems.append("content-type")
        if h.get("user-agent") != "AuthPI-Webhooks/1.0":
            problems.append("user-agent")
        if self.secrets and not verify_signature(
            got.body, h.get("x-webhook-signature", ""), self.secrets
        ):
            problems.append("signature")
        if self.bearer is not None and h.get("authorization") != f"Bearer {self.bearer}":
            problems.append("authorization")
        if got.attempt < 1:
            problems.append("x-webhook-attempt")
        try:
            envelope = got.json()
        except ValueError:
            return [*problems, "body is not JSON"]
        problems.extend(self._envelope_problems(got, envelope))
        return problems

    def _envelope_problems(self, got: Received, envelope: Any) -> list[str]:
        if not isinstance(envelope, dict):
            return ["envelope shape"]
        env: dict[str, Any] = envelope  # pyright: ignore[reportUnknownVariableType]
        data: Any = env.get("data")
        if not isinstance(data, dict):
            return ["envelope shape"]
        data = cast(dict[str, Any], data)
        expected_source = "com.authpi.webhooks/v1/" + (self.webhook_id or "")
        checks = {
            "envelope id": env.get("id") == got.delivery_id and got.delivery_id.startswith("dlv_"),
            "specversion": env.get("specversion") == "1.0",
            "type": env.get("type") == "event",
            "datacontenttype": env.get("datacontenttype") == "application/json",
            "source": env.get("source") == expected_source
            if self.webhook_id
            else str(env.get("source", "")).startswith(expected_source),
            "event id": data.get("id") == got.event_id and got.event_id.startswith("evt_"),
            "event type": data.get("type") == got.event_type,
            "event source": data.get("source") == "com.authpi/v1",
            "event spec": data.get("spec") == "1",
            "subject": isinstance(data.get("subject"), dict),
        }
        return [name for name, ok in checks.items() if not ok]

    # -- what the tests read --------------------------------------------------------------

    def of_event(self, event_id: str) -> list[Received]:
        return [r for r in self.requests if r.event_id == event_id]

    def answered_ok(self) -> list[Received]:
        return [r for r in self.requests if r.status is not None and 200 <= r.status < 300]

    def problems(self) -> list[tuple[str, list[str]]]:
        return [(r.delivery_id, r.problems) for r in self.requests if r.problems]

    async def close_idle(self) -> None:
        for transport in list(self.connections):
            transport.close()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0)
