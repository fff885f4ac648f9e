"""Reading the mail a running platform sent, the way a developer does: over HTTP from its Core API
port's `/dev/mail.json` (the development mail sink). `wait_for` polls that observable state until
a matching message arrives, within a deadline."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import msgspec

_URL = re.compile(r"https?://[^\s<>\"']+")


class Mail(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    sender: str = msgspec.field(name="from")
    to: str
    recipients: list[str]
    subject: str
    text: str
    html: str | None
    received_at: int

    def links(self) -> list[str]:
        """The http(s) links of the text body, in order."""
        return _URL.findall(self.text)

    def link(self, contains: str = "") -> str:
        """The one link of the text body that contains `contains`."""
        found = [u for u in self.links() if contains in u]
        if len(found) != 1:
            raise AssertionError(f"expected one link with {contains!r}, found {found}")
        return found[0]


class _Page(msgspec.Struct, frozen=True):
    data: list[Mail]


class Mailbox:
    """The platform's captured mail. Each `wait_for` hands out the oldest matching message this
    mailbox has not handed out before, so a test that triggers two mails to one address reads
    them in the order they arrived."""

    def __init__(self, api_url: str, *, poll_s: float = 0.1) -> None:
        self.api_url = api_url.rstrip("/")
        self.poll_s = poll_s
        self._seen: set[int] = set()

    async def messages(self, to: str | None = None) -> list[Mail]:
        """Everything the sink holds (for `to` only, when given), oldest first."""
        params = {"to": to} if to is not None else {}
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(f"{self.api_url}/dev/mail.json", params=params)
        if response.status_code == 404:
            raise AssertionError("no /dev/mail.json: the platform runs with AUTHPI_SMTP_URL set")
        response.raise_for_status()
        page = msgspec.json.decode(response.content, type=_Page)
        return sorted(page.data, key=lambda m: m.id)

    async def wait_for(self, *, to: str, subject_contains: str = "", timeout: float = 10.0) -> Mail:
        deadline = time.monotonic() + timeout
        while True:
            received = await self.messages(to)
            for mail in received:
                if mail.id not in self._seen and subject_contains in mail.subject:
                    self._seen.add(mail.id)
                    return mail
            if time.monotonic() >= deadline:
                subjects = [m.subject for m in received]
                raise AssertionError(
                    f"no new mail to {to} with {subject_contains!r} in the subject within "
                    f"{timeout:.0f}s; mail to that address: {subjects}"
                )
            await asyncio.sleep(self.poll_s)
