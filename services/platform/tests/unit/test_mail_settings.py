"""AUTHPI_SMTP_URL and AUTHPI_MAIL_FROM: what they accept, what they refuse, and the MIME message
the SmtpMailer composes."""

from __future__ import annotations

import aiosmtplib
import pytest

from authpi.config import from_env
from authpi.web.mail import MailMessage, SmtpMailer, SmtpTarget, transient


def test_smtp_url_defaults_to_port_25_with_opportunistic_starttls():
    target = SmtpTarget.parse("smtp://mail.example.test")
    assert (target.host, target.port, target.implicit_tls) == ("mail.example.test", 25, False)
    assert target.starttls == "auto" and target.username is None


def test_smtps_url_is_implicit_tls_on_465():
    target = SmtpTarget.parse("smtps://mail.example.test")
    assert (target.port, target.implicit_tls, target.starttls) == (465, True, "off")


def test_smtp_url_credentials_are_percent_decoded_and_require_starttls_remotely():
    target = SmtpTarget.parse("smtp://user%40x.test:p%3Ass%2Fw@mail.example.test:587")
    assert (target.username, target.password, target.port) == ("user@x.test", "p:ss/w", 587)
    assert target.starttls == "require"


def test_smtp_url_refuses_credentials_in_clear_text_to_a_remote_server():
    with pytest.raises(ValueError, match="starttls=require"):
        SmtpTarget.parse("smtp://u:p@mail.example.test?starttls=off")


def test_smtp_url_allows_credentials_without_tls_on_loopback():
    assert SmtpTarget.parse("smtp://u:p@127.0.0.1:2525").starttls == "auto"
    assert SmtpTarget.parse("smtp://u:p@localhost:2525?starttls=off").starttls == "off"


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.test", "smtp://", "smtp://mail.example.test:notaport",
        "smtps://mail.example.test?starttls=require", "smtp://mail.example.test?starttls=maybe",
    ],
)  # fmt: skip
def test_smtp_url_malformed_is_refused(url):
    with pytest.raises(ValueError, match="AUTHPI_SMTP_URL"):
        SmtpTarget.parse(url)


def test_settings_read_smtp_url_and_mail_from(tmp_path):
    settings = from_env(
        {
            "AUTHPI_DATA_DIR": str(tmp_path),
            "AUTHPI_SMTP_URL": "smtps://u:p@smtp.example.test",
            "AUTHPI_MAIL_FROM": "Example <login@example.test>",
        }
    )
    assert settings.smtp_url == "smtps://u:p@smtp.example.test"
    assert settings.mail_from == "Example <login@example.test>"


def test_settings_default_to_no_smtp_url_and_the_no_reply_sender(tmp_path):
    settings = from_env({"AUTHPI_DATA_DIR": str(tmp_path)})
    assert settings.smtp_url is None
    assert settings.mail_from == "AuthPI <no-reply@localhost>"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AUTHPI_SMTP_URL", "mail.example.test:25"),
        ("AUTHPI_SMTP_URL", "smtp://mail.example.test:99999"),
        ("AUTHPI_MAIL_FROM", "no address here"),
        ("AUTHPI_MAIL_FROM", "a@x.test, b@x.test"),
    ],
)
def test_settings_refuse_malformed_mail_settings(tmp_path, name, value):
    with pytest.raises(ValueError, match=name):
        from_env({"AUTHPI_DATA_DIR": str(tmp_path), name: value})


def test_composed_message_is_multipart_text_and_html_from_the_configured_sender():
    mailer = SmtpMailer("smtp://127.0.0.1:2525", "Example <login@example.test>")
    mail = mailer.compose(
        MailMessage(to="ada@example.test", subject="Verify", text="Plain", html="<p>Rich</p>")
    )
    assert mail.get_content_type() == "multipart/alternative"
    assert str(mail["From"]) == "Example <login@example.test>"
    assert mail["Message-ID"].endswith("@example.test>")
    parts = [(p.get_content_type(), p.get_content().strip()) for p in mail.iter_parts()]
    assert parts == [("text/plain", "Plain"), ("text/html", "<p>Rich</p>")]


def test_composed_message_without_html_is_plain_text():
    mail = SmtpMailer("smtp://127.0.0.1:2525").compose(
        MailMessage(to="ada@example.test", subject="Hi", text="Only text")
    )
    assert mail.get_content_type() == "text/plain"
    assert str(mail["From"]) == "AuthPI <no-reply@localhost>"


def test_composed_message_refuses_header_injection():
    mailer = SmtpMailer("smtp://127.0.0.1:2525")
    with pytest.raises(ValueError):
        mailer.compose(MailMessage(to="a@x.test", subject="Hi\r\nBcc: b@x.test", text="."))


@pytest.mark.parametrize(
    "to",
    ["a@x.test,b@evil.test", "a@x.test; b@evil.test", "Eve <e@evil.test>", "a\x00b@x.test",
     "undisclosed:;", "a@x.test\r\nBcc: b@evil.test"],
)  # fmt: skip
def test_composed_message_refuses_anything_but_one_plain_recipient(to: str):
    with pytest.raises(ValueError):
        SmtpMailer("smtp://127.0.0.1:2525").compose(MailMessage(to=to, subject="Hi", text="."))


def test_transient_failures_are_connection_problems_and_4xx_replies():
    assert transient(ConnectionRefusedError())
    assert transient(aiosmtplib.SMTPServerDisconnected("gone"))
    assert transient(aiosmtplib.SMTPConnectTimeoutError("slow"))
    assert transient(aiosmtplib.SMTPDataError(451, "later"))
    assert not transient(aiosmtplib.SMTPDataError(554, "no"))
    assert not transient(aiosmtplib.SMTPAuthenticationError(535, "bad credentials"))
    assert not transient(aiosmtplib.SMTPNotSupported("no STARTTLS"))
    refused = [aiosmtplib.SMTPRecipientRefused(450, "busy", "a@x.test")]
    assert transient(aiosmtplib.SMTPRecipientsRefused(refused))
    refused.append(aiosmtplib.SMTPRecipientRefused(550, "unknown", "b@x.test"))
    assert not transient(aiosmtplib.SMTPRecipientsRefused(refused))
