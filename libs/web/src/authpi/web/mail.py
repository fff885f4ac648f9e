"""Outgoing mail: the `Mailer` the services send through, and `SmtpMailer`, which delivers over
SMTP to `AUTHPI_SMTP_URL` with a bounded number of retries on transient failures. Bodies, links
and tokens are never logged: a log line names only the recipient's domain and the SMTP outcome."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid
from typing import Literal, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
import msgspec

from authpi.errors import ServerError, TemporarilyUnavailable
from authpi.observability import get_logger

log = get_logger("authpi.mail")

DEFAULT_FROM = "AuthPI <no-reply@localhost>"
StartTls = Literal["require", "auto", "off"]
# aiosmtplib's `start_tls`: True requires it, None upgrades when the server offers it.
_START_TLS: dict[StartTls, bool | None] = {"require": True, "auto": None, "off": False}


class MailMessage(msgspec.Struct, frozen=True):
    """One message to one recipient: a plain-text body, and optionally an HTML alternative."""

    to: str
    subject: str
    text: str
    html: str | None = None


class Mailer(Protocol):
    async def send(self, message: MailMessage) -> None: ...


@dataclass(frozen=True)
class SmtpTarget:
    """What `AUTHPI_SMTP_URL` names: `smtp://[user:password@]host[:port][?starttls=…]` (port 25
    by default; STARTTLS `require`, `auto` (when the server offers it) or `off`) or
    `smtps://[user:password@]host[:port]` (TLS from the first byte, port 465 by default)."""

    host: str
    port: int
    implicit_tls: bool
    starttls: StartTls
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("AUTHPI_SMTP_URL must be smtp://host[:port] or smtps://host[:port]")
        try:
            port = parts.port
        except ValueError:
            raise ValueError("AUTHPI_SMTP_URL has an invalid port") from None
        implicit_tls = parts.scheme == "smtps"
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        starttls = _starttls(parts.query, implicit_tls, bool(username), parts.hostname)
        return cls(
            host=parts.hostname, port=port or (465 if implicit_tls else 25),
            implicit_tls=implicit_tls, starttls=starttls, username=username, password=password,
        )  # fmt: skip


def _starttls(query: str, implicit_tls: bool, credentials: bool, host: str) -> StartTls:
    values = parse_qs(query).get("starttls", [])
    if implicit_tls:
        if values:
            raise ValueError("AUTHPI_SMTP_URL: smtps:// is TLS already; drop ?starttls")
        return "off"
    if len(values) > 1 or (values and values[0] not in _START_TLS):
        raise ValueError("AUTHPI_SMTP_URL: starttls must be require, auto or off")
    # A password goes to a remote server only over TLS: STARTTLS is required unless said otherwise.
    chosen: StartTls = "require" if credentials and not is_loopback_host(host) else "auto"
    for mode in _START_TLS:
        if values and values[0] == mode:
            chosen = mode
    if credentials and chosen != "require" and not is_loopback_host(host):
        raise ValueError("AUTHPI_SMTP_URL: credentials over smtp:// need ?starttls=require")
    return chosen


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


Sleep = Callable[[float], Awaitable[object]]


class SmtpMailer:
    """Delivers each message on a connection of its own. A transient failure (no connection, a
    timeout, a dropped connection, a 4xx reply) is retried up to `attempts` times in all, with
    doubling back-off; then `TemporarilyUnavailable` (reason `mail.unavailable`). A permanent
    refusal (5xx: unknown recipient, failed authentication) raises `ServerError` (reason
    `mail.rejected`) at once."""

    def __init__(
        self,
        url: str,
        sender: str = DEFAULT_FROM,
        *,
        attempts: int = 3,
        backoff_s: float = 0.5,
        timeout_s: float = 10.0,
        max_connections: int = 8,
        tls_context: ssl.SSLContext | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.target = SmtpTarget.parse(url)
        self.sender = _address(sender)
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._tls_context = tls_context
        self._sleep = sleep
        self._connections = asyncio.Semaphore(max_connections)

    async def send(self, message: MailMessage) -> None:
        mail = self.compose(message)
        domain = _domain(message.to)
        for attempt in range(1, self.attempts + 1):
            try:
                async with self._connections:
                    await self._deliver(mail)
            except Exception as exc:
                if not transient(exc):
                    log.error("mail.rejected", to_domain=domain, **_outcome(exc))
                    raise ServerError(
                        "The message could not be sent.", reason="mail.rejected"
                    ) from None
                log.warning("mail.send_failed", to_domain=domain, attempt=attempt, **_outcome(exc))
                if attempt == self.attempts:
                    raise TemporarilyUnavailable(
                        "Mail cannot be sent right now; try again later.",
                        reason="mail.unavailable",
                    ) from None
                await self._sleep(self.backoff_s * 2 ** (attempt - 1))
            else:
                log.info("mail.sent", to_domain=domain, attempts=attempt)
                return

    def compose(self, message: MailMessage) -> EmailMessage:
        """The MIME message: text/plain, or multipart/alternative with the HTML part. Header
        values with line breaks are refused (ValueError) by the email package's policy, and a
        recipient that is not one plain address (a list, a display name, a group, control
        characters) is refused too: `To` must never widen a message meant for one person."""
        if not _single_address(message.to):
            raise ValueError("the recipient must be one plain email address")
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail["Date"] = format_datetime(datetime.now(UTC))
        mail["Message-ID"] = make_msgid(domain=self.sender.domain or "localhost")
        mail.set_content(message.text)
        if message.html is not None:
            mail.add_alternative(message.html, subtype="html")
        return mail

    async def _deliver(self, mail: EmailMessage) -> None:
        t = self.target
        await aiosmtplib.send(
            mail, recipients=[str(mail["To"])], hostname=t.host, port=t.port,
            username=t.username, password=t.password,
            use_tls=t.implicit_tls, start_tls=_START_TLS[t.starttls],
            tls_context=self._tls_context, timeout=self.timeout_s,
        )  # fmt: skip


_ATOM = r"[^@\s\x00-\x1f\x7f,;:<>()\[\]\\\"]"
_ADDRESS = re.compile(rf"{_ATOM}{{1,64}}@{_ATOM}{{1,253}}")


def _single_address(to: str) -> bool:
    return len(to) <= 254 and _ADDRESS.fullmatch(to) is not None


class NoMailer:
    """For processes that never send mail (the contract generator, one-off maintenance
    commands): a send there is a defect, and fails loudly."""

    async def send(self, message: MailMessage) -> None:
        raise ServerError("The message could not be sent.", reason="mail.no_mailer")


def mailer_for(smtp_url: str | None, sender: str = DEFAULT_FROM) -> Mailer:
    return SmtpMailer(smtp_url, sender) if smtp_url else NoMailer()


def transient(exc: BaseException) -> bool:
    """Worth another attempt: the server was unreachable, slow or went away, or said 4xx."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(400 <= r.code < 500 for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return 400 <= exc.code < 500
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return False  # e.g. STARTTLS required but not offered: configuration, not weather
    return isinstance(exc, OSError | TimeoutError | aiosmtplib.SMTPException)


def _outcome(exc: BaseException) -> dict[str, object]:
    """What a log line may say about a failure: its kind and SMTP code, never the server's text
    (which may quote addresses)."""
    code: int | None = None
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        code = exc.code
    elif isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        code = exc.recipients[0].code
    return {"error": type(exc).__name__, "smtp_code": code}


def _address(sender: str) -> Address:
    pairs = getaddresses([sender])
    if len(pairs) != 1 or "@" not in pairs[0][1]:
        raise ValueError(f"AUTHPI_MAIL_FROM is not one mail address: {sender!r}")
    name, addr = pairs[0]
    local, _, domain = addr.rpartition("@")
    return Address(display_name=name, username=local, domain=domain)


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip(" >").lower() or "?"
