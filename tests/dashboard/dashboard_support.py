"""The dashboard tests' parts: a real SMTP sink (aiosmtpd) the gateway mails to, and a browser
made of an httpx client with its own cookie jar that fills in the forms as a person would."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from html import unescape
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from fastapi import FastAPI

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')
LINK = re.compile(r"https?://\S+/dashboard/verify\?token=[\w.-]+")
RESET_LINK = re.compile(r"https?://\S+/dashboard/reset\?token=[\w.-]+")


@dataclass
class MailSink:
    """An SMTP server on a free local port keeping every message it receives."""

    # (envelope recipients, message) of each delivery.
    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    port: int = 0
    controller: Controller | None = None

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"

    def start(self) -> MailSink:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def to(self, address: str) -> list[EmailMessage]:
        return [message for rcpt, message in self.received if address in rcpt]

    def link_for(self, address: str, pattern: re.Pattern[str] = LINK) -> str:
        """The verification link (or another ``pattern``) in the latest message to
        ``address``."""
        mails = self.to(address)
        assert mails, f"no mail to {address}"
        body = mails[-1].get_body(("plain",))
        assert body is not None
        found = pattern.findall(body.get_content())
        assert len(found) == 1, body.get_content()
        return found[0]


def reset_link_for(mail: MailSink, address: str) -> str:
    """The password reset link in the latest message to ``address``."""
    return mail.link_for(address, RESET_LINK)


def csrf_of(html: str) -> str:
    found = CSRF.findall(html)
    assert found, "the page has no form token"
    return unescape(found[0])


class Browser:
    """One browser: its own cookies, its own address."""

    def __init__(
        self, app: FastAPI, ip: str = "203.0.113.7", user_agent: str = "TestBrowser/1"
    ) -> None:
        transport = httpx.ASGITransport(app=app, client=(ip, 40000))
        self.client = httpx.AsyncClient(
            transport=transport,
            base_url="https://pay.example.com",
            headers={"User-Agent": user_agent},
        )

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def get(self, path: str, **options: Any) -> httpx.Response:
        return await self.client.get(path, **options)

    async def token(self, path: str) -> str:
        page = await self.client.get(path)
        assert page.status_code == 200, page.text
        return csrf_of(page.text)

    async def post(
        self, path: str, data: dict[str, str], *, token_from: str | None = None
    ) -> httpx.Response:
        """POST a form with the token of the page at ``token_from`` (``path`` when None)."""
        token = await self.token(token_from or path)
        return await self.client.post(path, data={"csrf_token": token, **data})

    async def sign_up(
        self, name: str, email: str, password: str = PASSWORD, **extra: str
    ) -> httpx.Response:
        return await self.post(
            "/dashboard/signup", {"name": name, "email": email, "password": password, **extra}
        )

    async def verify(self, link: str) -> httpx.Response:
        """Press the button of the link's page (its form token is the pre-session one, which
        the log-in page shows too, so a spent link can be posted again)."""
        token = link.split("token=", 1)[1]
        return await self.post("/dashboard/verify", {"token": token}, token_from="/dashboard/login")

    async def log_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return await self.post("/dashboard/login", {"email": email, "password": password})

    @property
    def session_cookie(self) -> str | None:
        return self.client.cookies.get(
            "stablegate_session", domain="pay.example.com", path="/dashboard"
        )


async def signed_up_and_in(
    browser: Browser, mail: MailSink, name: str, email: str
) -> httpx.Response:
    """Sign up, open the mailed link, log in: the keys page answer."""
    answer = await browser.sign_up(name, email)
    assert answer.status_code == 200, answer.text
    verified = await browser.verify(mail.link_for(email.lower()))
    assert verified.status_code == 200, verified.text
    logged_in = await browser.log_in(email)
    assert logged_in.status_code == 303, logged_in.text
    assert logged_in.headers["location"] == "/dashboard/keys"
    return logged_in
