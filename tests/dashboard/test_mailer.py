"""The SMTP URL and sending through a real local server (aiosmtpd)."""

from __future__ import annotations

import socket

import pytest
from tests.dashboard.dashboard_support import MailSink

from stablegate.dashboard.mailer import Mailer, SmtpServer


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://relay.local", SmtpServer("relay.local", 25, "smtp", None, None)),
        (
            "smtp+starttls://user%40example.com:p%40ss%3Aword@mail.example.com",
            SmtpServer("mail.example.com", 587, "smtp+starttls", "user@example.com", "p@ss:word"),
        ),
        (
            "smtps://u:p@mail.example.com:2465",
            SmtpServer("mail.example.com", 2465, "smtps", "u", "p"),
        ),
    ],
)
def test_the_url_names_host_port_security_and_login(url: str, expected: SmtpServer) -> None:
    assert SmtpServer.from_url(url) == expected


def test_other_urls_are_refused() -> None:
    for url in ("http://mail.example.com", "smtp://", "mail.example.com:25"):
        with pytest.raises(ValueError, match="smtp://"):
            SmtpServer.from_url(url)


async def test_a_message_reaches_the_server(mail: MailSink) -> None:
    mailer = Mailer(SmtpServer.from_url(mail.url), "noreply@pay.example.com")
    assert await mailer.send("owner@shop.example", "Hello", "Line one\n\nhttps://x.example/a")
    [message] = mail.to("owner@shop.example")
    assert message["From"] == "noreply@pay.example.com" and message["Subject"] == "Hello"
    body = message.get_body(("plain",))
    assert body is not None and "https://x.example/a" in body.get_content()


async def test_no_server_or_a_refusing_one_is_false_never_an_exception() -> None:
    assert await Mailer(None, "noreply@pay.example.com").send("a@b.example", "s", "b") is False
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    down = Mailer(SmtpServer.from_url(f"smtp://127.0.0.1:{port}"), "noreply@pay.example.com")
    assert await down.send("a@b.example", "s", "b") is False
