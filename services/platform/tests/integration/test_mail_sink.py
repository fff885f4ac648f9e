"""SmtpMailer against the development mail sink over real SMTP on loopback TCP: delivery, parsed
capture, retries on transient replies, refusal on permanent ones, bounded memory, and logs that
never carry a body, a link or a token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from email.message import EmailMessage

import aiosmtplib
import pytest
import pytest_asyncio
from structlog.testing import capture_logs

from authpi.crypto.clock import FixedClock
from authpi.embedded.servers import free_port
from authpi.errors import ServerError, TemporarilyUnavailable
from authpi.platform.mailsink import CAPACITY, MailSink
from authpi.web.mail import MailMessage, SmtpMailer

CLOCK_MS = 1_781_222_400_000


@pytest_asyncio.fixture
async def sink() -> AsyncIterator[MailSink]:
    running = MailSink(FixedClock(CLOCK_MS))
    await asyncio.to_thread(running.start)
    try:
        yield running
    finally:
        await asyncio.to_thread(running.stop)


class Flaky(MailSink):
    """Answers DATA with `replies` first (e.g. 451), then accepts like the sink."""

    def __init__(self, replies: list[str]) -> None:
        super().__init__(FixedClock(CLOCK_MS))
        self.replies = replies
        self.attempts = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        self.attempts += 1
        if self.replies:
            return self.replies.pop(0)
        return await super().handle_DATA(server, session, envelope)


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def test_smtp_mailer_delivers_text_and_html_to_the_sink(sink):
    mailer = SmtpMailer(sink.url, "Example <login@example.test>")
    await mailer.send(
        MailMessage(
            to="ada@example.test", subject="Verify your email",
            text="Open https://idp.example.test/iss_1/verify-email?token=t0k3n", html="<p>Hi</p>",
        )
    )  # fmt: skip
    [mail] = sink.messages()
    assert mail.recipients == ["ada@example.test"] and mail.to == "ada@example.test"
    assert mail.sender == "Example <login@example.test>"
    assert mail.subject == "Verify your email"
    assert mail.text.strip() == "Open https://idp.example.test/iss_1/verify-email?token=t0k3n"
    assert mail.html is not None and mail.html.strip() == "<p>Hi</p>"
    assert mail.received_at == CLOCK_MS and mail.id == 1
    assert "\r" not in mail.text + mail.html


async def test_sink_keeps_unicode_subjects_and_bodies(sink):
    await SmtpMailer(sink.url).send(
        MailMessage(to="zoë@example.test", subject="Grüße — ✓", text="Ünïcödé body")
    )
    [mail] = sink.messages()
    assert (mail.subject, mail.text.strip(), mail.html) == ("Grüße — ✓", "Ünïcödé body", None)
    assert mail.recipients == ["zoë@example.test"]


async def test_sink_filters_by_recipient_newest_first(sink):
    mailer = SmtpMailer(sink.url)
    for to, subject in (("a@x.test", "one"), ("b@x.test", "two"), ("A@x.test", "three")):
        await mailer.send(MailMessage(to=to, subject=subject, text="."))
    assert [m.subject for m in sink.messages("a@x.test")] == ["three", "one"]
    assert [m.subject for m in sink.messages()] == ["three", "two", "one"]


async def test_sink_keeps_only_the_last_500_messages(sink):
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port) as smtp:
        for i in range(CAPACITY + 5):
            mail = EmailMessage()
            mail["From"], mail["To"], mail["Subject"] = "s@x.test", "r@x.test", f"n{i}"
            mail.set_content("body")
            await smtp.send_message(mail)
    kept = sink.messages()
    assert len(kept) == CAPACITY == 500
    assert kept[0].subject == f"n{CAPACITY + 4}" and kept[-1].subject == "n5"


async def test_sink_refuses_a_message_over_its_size_limit(sink):
    huge = MailMessage(to="r@x.test", subject="big", text="x" * 1_100_000)
    with pytest.raises(ServerError) as refused:
        await SmtpMailer(sink.url, attempts=3).send(huge)
    assert refused.value.reason == "mail.rejected"
    assert sink.messages() == []


async def test_smtp_mailer_retries_transient_replies_with_backoff():
    flaky = Flaky(["451 4.3.0 try again later", "421 4.3.2 busy"])
    await asyncio.to_thread(flaky.start)
    try:
        sleeps = Sleeps()
        mailer = SmtpMailer(flaky.url, attempts=3, backoff_s=0.5, sleep=sleeps)
        await mailer.send(MailMessage(to="r@x.test", subject="third time", text="."))
        assert flaky.attempts == 3 and sleeps.delays == [0.5, 1.0]
        assert [m.subject for m in flaky.messages()] == ["third time"]
    finally:
        await asyncio.to_thread(flaky.stop)


async def test_smtp_mailer_gives_up_after_its_attempts_as_temporarily_unavailable():
    sleeps = Sleeps()
    mailer = SmtpMailer(f"smtp://127.0.0.1:{free_port()}", attempts=3, sleep=sleeps)
    with pytest.raises(TemporarilyUnavailable) as failed:
        await mailer.send(MailMessage(to="r@x.test", subject="s", text="."))
    assert failed.value.reason == "mail.unavailable" and failed.value.retryable
    assert sleeps.delays == [0.5, 1.0]


async def test_smtp_mailer_does_not_retry_a_permanent_refusal():
    flaky = Flaky(["550 5.1.1 no such user"])
    await asyncio.to_thread(flaky.start)
    try:
        sleeps = Sleeps()
        with pytest.raises(ServerError) as refused:
            await SmtpMailer(flaky.url, sleep=sleeps).send(
                MailMessage(to="nobody@x.test", subject="s", text=".")
            )
        assert refused.value.reason == "mail.rejected"
        assert flaky.attempts == 1 and sleeps.delays == [] and flaky.messages() == []
    finally:
        await asyncio.to_thread(flaky.stop)


async def test_mail_logs_never_carry_bodies_links_tokens_or_the_address():
    flaky = Flaky(["451 4.3.0 later"])
    await asyncio.to_thread(flaky.start)
    secret = "s3cr3t-t0k3n-value"
    message = MailMessage(
        to="ada.lovelace@example.test", subject=f"Your code {secret}",
        text=f"https://idp.example.test/reset?token={secret}",
        html=f'<a href="https://idp.example.test/reset?token={secret}">reset</a>',
    )  # fmt: skip
    try:
        with capture_logs() as logs:
            await SmtpMailer(flaky.url, sleep=Sleeps()).send(message)
    finally:
        await asyncio.to_thread(flaky.stop)
    # Other tasks of the test process log too: only the mailer's own entries are counted, but
    # nothing logged while it ran may carry the message.
    mail = [e for e in logs if str(e["event"]).startswith("mail.")]
    assert [e["event"] for e in mail] == ["mail.send_failed", "mail.sent"]
    assert mail[-1]["to_domain"] == "example.test"
    text = repr(logs)
    for leaked in (secret, "idp.example.test", "ada.lovelace", "reset"):
        assert leaked not in text
