"""The development mail sink: with no `AUTHPI_SMTP_URL`, the host runs an SMTP server on
127.0.0.1 (a port of the system's choosing) that keeps the last 500 messages in memory, parsed,
and shows them on the Core API port at `GET /dev/mail` (HTML) and `GET /dev/mail.json`. Those
routes exist only while the sink runs; they are a development aid, left out of the OpenAPI
document, and the tests read every mail the platform sends through them."""

from __future__ import annotations

import html
import re
import socket
import threading
from collections import deque
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import msgspec
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from litestar import MediaType, Response, get
from litestar.params import FromQuery

from authpi.crypto.clock import Clock
from authpi.web.opts import ANONYMOUS

CAPACITY = 500
# Per message. Portal mail is a few kilobytes; with CAPACITY this bounds the sink's memory.
MAX_MESSAGE_BYTES = 1_048_576
_PARSER = BytesParser(policy=policy.default)
_URL = re.compile(r"https?://[^\s<>\"']+")
_NO_STORE = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# The page runs no script; an HTML body is shown in a sandboxed frame, under the same policy.
_PAGE_HEADERS = {
    **_NO_STORE,
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data: http: https:"
    ),
}


class CapturedMail(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    sender: str = msgspec.field(name="from")
    to: str  # the To header as written
    recipients: list[str]  # the SMTP envelope's
    subject: str
    text: str
    html: str | None
    received_at: int  # epoch milliseconds


def parse(content: bytes, recipients: list[str], mail_id: int, received_at: int) -> CapturedMail:
    message = _PARSER.parsebytes(content)
    assert isinstance(message, EmailMessage)  # policy.default builds EmailMessage
    return CapturedMail(
        id=mail_id, sender=str(message.get("From", "")), to=str(message.get("To", "")),
        recipients=recipients, subject=str(message.get("Subject", "")),
        text=_part(message, "plain") or "", html=_part(message, "html"), received_at=received_at,
    )  # fmt: skip


def _part(message: EmailMessage, subtype: str) -> str | None:
    body = message.get_body(preferencelist=(subtype,))
    if body is None or body.get_content_subtype() != subtype:
        return None
    content = body.get_content()
    # SMTP carries CRLF line ends; readers (and tests) see the text as it was written.
    return content.replace("\r\n", "\n") if isinstance(content, str) else None


class _Controller(Controller):
    """aiosmtpd's threaded controller on a socket bound beforehand, so port 0 works (the stock
    controller connects to the configured port to check that it started)."""

    def __init__(self, handler: Any, sock: socket.socket, **kwargs: Any) -> None:
        host, port = sock.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port, **kwargs)
        self._sock = sock

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock)


class MailSink:
    """Thread-safe: SMTP sessions run on the controller's thread, readers on the API's loop."""

    def __init__(self, clock: Clock, *, capacity: int = CAPACITY, host: str = "127.0.0.1") -> None:
        self._clock = clock
        self._host = host
        self._lock = threading.Lock()
        self._messages: deque[CapturedMail] = deque(maxlen=capacity)
        self._next_id = 1
        self._controller: _Controller | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"smtp://{self._host}:{self.port}"

    def start(self) -> None:
        """Blocking (run it in a thread): binds, then waits until the server answers."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, 0))
        self.port = sock.getsockname()[1]
        # The server hostname is fixed: aiosmtpd would otherwise look up this host's FQDN.
        controller = _Controller(
            self, sock, server_hostname="authpi-mail-sink", data_size_limit=MAX_MESSAGE_BYTES
        )
        try:
            controller.start()
        except BaseException:
            sock.close()
            raise
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        recipients = list(envelope.rcpt_tos)
        received_at = self._clock.now_ms()
        with self._lock:
            mail_id = self._next_id
            self._next_id += 1
        mail = parse(content, recipients, mail_id, received_at)
        with self._lock:
            self._messages.append(mail)
        return "250 Message accepted for delivery"

    def messages(self, to: str | None = None) -> list[CapturedMail]:
        """Newest first; with `to`, only those addressed to it (envelope, case-blind)."""
        with self._lock:
            kept = list(self._messages)
        kept.sort(key=lambda m: m.id, reverse=True)
        if to is None:
            return kept
        wanted = to.strip().lower()
        return [m for m in kept if wanted in (r.lower() for r in m.recipients)]

    def routes(self) -> list[Any]:
        """`/dev/mail` and `/dev/mail.json` for the Core API app; anonymous, like the rest of a
        development setup's loopback conveniences, and not in the OpenAPI document."""
        anonymous = {ANONYMOUS: True}

        @get("/dev/mail.json", include_in_schema=False, sync_to_thread=False, opt=anonymous)
        def dev_mail_json(to: FromQuery[str | None] = None) -> Response[bytes]:
            body = msgspec.json.encode({"data": self.messages(to)})
            return Response(body, media_type=MediaType.JSON, headers=_NO_STORE)

        @get("/dev/mail", include_in_schema=False, sync_to_thread=False, opt=anonymous)
        def dev_mail(to: FromQuery[str | None] = None) -> Response[str]:
            page = render_page(self.messages(to), self.url)
            return Response(page, media_type=MediaType.HTML, headers=_PAGE_HEADERS)

        return [dev_mail_json, dev_mail]


def render_page(messages: list[CapturedMail], smtp_url: str) -> str:
    """Every value is escaped; links in the text bodies become anchors (escaped, http(s) only)."""
    items = "\n".join(_render_one(m) for m in messages) or "<p class=empty>No mail yet.</p>"
    return _PAGE.format(count=len(messages), smtp_url=html.escape(smtp_url), items=items)


def _render_one(mail: CapturedMail) -> str:
    when = datetime.fromtimestamp(mail.received_at / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    frame = ""
    if mail.html is not None:
        frame = (
            "<details><summary>HTML version</summary>"
            f'<iframe sandbox="" title="HTML version" srcdoc="{html.escape(mail.html)}"></iframe>'
            "</details>"
        )
    return (
        f'<article id="mail-{mail.id}"><h2>{html.escape(mail.subject) or "(no subject)"}</h2>'
        f"<dl><dt>To</dt><dd>{html.escape(mail.to)}</dd>"
        f"<dt>From</dt><dd>{html.escape(mail.sender)}</dd>"
        f"<dt>Received</dt><dd>{when}</dd></dl>"
        f"<pre>{_linked(mail.text)}</pre>{frame}</article>"
    )


def _linked(text: str) -> str:
    out: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        out.append(html.escape(text[last : match.start()]))
        url = html.escape(match.group(0))
        out.append(f'<a href="{url}" rel="noreferrer">{url}</a>')
        last = match.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>AuthPI development mail</title>
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d2230; }}
header {{ background: #1d2230; color: #fff; padding: 14px 24px; }}
header h1 {{ font-size: 18px; margin: 0; }}
header p {{ margin: 4px 0 0; color: #c5cad6; font-size: 13px; }}
main {{ max-width: 960px; margin: 0 auto; padding: 16px 24px; }}
article {{ background: #fff; border: 1px solid #dde1e8; border-radius: 6px; padding: 14px 18px;
  margin-bottom: 14px; }}
h2 {{ font-size: 16px; margin: 0 0 8px; }}
dl {{ display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0 0 10px;
  font-size: 13px; color: #4a5263; }}
dt {{ font-weight: 600; }} dd {{ margin: 0; }}
pre {{ white-space: pre-wrap; word-break: break-word; background: #f7f8fa; padding: 10px;
  border-radius: 4px; margin: 0; }}
iframe {{ width: 100%; height: 360px; border: 1px solid #dde1e8; margin-top: 8px; }}
.empty {{ color: #4a5263; }}
</style></head>
<body><header><h1>Development mail sink</h1>
<p>{count} message(s), newest first. SMTP {smtp_url}. Set AUTHPI_SMTP_URL to deliver mail
instead.</p></header>
<main>
{items}
</main></body></html>
"""
