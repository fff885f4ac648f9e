"""The development mail sink on a running platform: what the services' mailer sends shows at the
Core API port's /dev/mail.json and /dev/mail (escaped), the test Mailbox reads it from there, and
none of it exists once a real SMTP server is configured."""

from __future__ import annotations

import asyncio
import html

import httpx
import pytest
from structlog.testing import capture_logs

from authpi.config import Settings
from authpi.crypto.clock import SystemClock
from authpi.errors import ServerError
from authpi.platform.host import Platform
from authpi.platform.mailsink import MailSink
from authpi.platform.testing.plugin import running_platform
from authpi.web.mail import MailMessage, NoMailer, SmtpMailer


def _mailer(platform):
    return platform.handle.rt.mailer


async def test_platform_mailer_sends_to_its_development_sink(platform):
    mailer = _mailer(platform)
    assert isinstance(mailer, SmtpMailer)
    assert platform.handle.mail_sink is not None
    assert mailer.target.port == platform.handle.mail_sink.port
    assert mailer.target.host == "127.0.0.1"


async def test_dev_mail_json_lists_captured_mail(platform):
    to = "json-reader@example.test"
    await _mailer(platform).send(
        MailMessage(to=to, subject="Welcome", text="Hello there", html="<b>Hello</b>")
    )
    async with httpx.AsyncClient(base_url=platform.api_url) as http:
        response = await http.get("/dev/mail.json", params={"to": to})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    [mail] = response.json()["data"]
    assert set(mail) == {"id", "from", "to", "recipients", "subject", "text", "html", "received_at"}
    assert (mail["to"], mail["subject"], mail["text"].strip()) == (to, "Welcome", "Hello there")
    assert mail["html"].strip() == "<b>Hello</b>"
    assert mail["from"] == "AuthPI <no-reply@localhost>"


async def test_dev_mail_page_escapes_what_mail_contains(platform):
    to = "escape-check@example.test"
    subject = '<script>alert("x")</script> & <b>bold</b>'
    body = 'Click https://idp.example.test/x?a=1&b="2" <img src=x onerror=alert(1)>'
    await _mailer(platform).send(
        MailMessage(to=to, subject=subject, text=body, html='<img src=x onerror="alert(2)">')
    )
    async with httpx.AsyncClient(base_url=platform.api_url) as http:
        response = await http.get("/dev/mail", params={"to": to})
    page = response.text
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "script-src" not in response.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "<script>" not in page and "<b>bold</b>" not in page and "<img" not in page
    assert html.escape(subject) in page
    assert '<a href="https://idp.example.test/x?a=1&amp;b=' in page
    assert 'sandbox=""' in page
    assert 'srcdoc="&lt;img src=x onerror=&quot;alert(2)&quot;&gt;' in page


async def test_dev_mail_routes_stay_out_of_the_openapi_document(platform):
    async with httpx.AsyncClient(base_url=platform.api_url) as http:
        document = (await http.get("/openapi.json")).json()
    assert not [path for path in document["paths"] if path.startswith("/dev")]


async def test_mailbox_waits_for_mail_and_hands_each_out_once(platform, mailbox):
    to = "mailbox-user@example.test"
    mailer = _mailer(platform)

    async def later() -> None:
        await asyncio.sleep(0.3)
        await mailer.send(
            MailMessage(to=to, subject="Reset your password", text="https://i.test/reset?t=1")
        )
        await mailer.send(MailMessage(to=to, subject="Reset your password", text="second"))

    sending = asyncio.create_task(later())
    first = await mailbox.wait_for(to=to, subject_contains="Reset", timeout=10)
    second = await mailbox.wait_for(to=to, subject_contains="Reset", timeout=10)
    await sending
    assert first.link("/reset") == "https://i.test/reset?t=1"
    assert second.text.strip() == "second" and second.id > first.id


async def test_mailbox_gives_up_at_its_deadline(platform, mailbox):
    with pytest.raises(AssertionError, match=r"no new mail to nobody-writes@example\.test"):
        await mailbox.wait_for(to="nobody-writes@example.test", timeout=0.5)


async def test_configured_smtp_url_sends_there_and_serves_no_dev_routes(infra, tmp_path):
    relay = MailSink(SystemClock())
    await asyncio.to_thread(relay.start)
    try:
        async with running_platform(infra, tmp_path, smtp_url=relay.url) as other:
            assert other.handle.mail_sink is None
            async with httpx.AsyncClient(base_url=other.api_url) as http:
                for path in ("/dev/mail", "/dev/mail.json"):
                    assert (await http.get(path)).status_code == 404, path
            await other.handle.rt.mailer.send(
                MailMessage(to="real@example.test", subject="Delivered", text="by SMTP")
            )
        assert [m.subject for m in relay.messages("real@example.test")] == ["Delivered"]
    finally:
        await asyncio.to_thread(relay.stop)


async def test_idp_workers_send_through_the_same_sink(infra, tmp_path):
    async with running_platform(infra, tmp_path, idp_workers=2) as other:
        sink = other.handle.mail_sink
        assert sink is not None and other.handle.workers.healthy()
        assert other.handle.workers.settings.smtp_url == sink.url


async def test_no_sink_when_the_core_api_listens_beyond_loopback(tmp_path):
    """Reset and login links must never show on a network-facing port: without AUTHPI_SMTP_URL
    such a deployment sends no mail at all, and says so."""
    platform = Platform(Settings(data_dir=tmp_path))
    platform.api_url = "http://192.0.2.10:8000"  # what _bind_ports leaves for a public address
    with capture_logs() as logs:
        mailer = await platform.open_mailer(platform.settings)
    assert isinstance(mailer, NoMailer) and platform.mail_sink is None
    assert [e["event"] for e in logs] == ["mail.not_configured"]
    with pytest.raises(ServerError):
        await mailer.send(MailMessage(to="a@x.test", subject="s", text="t"))
