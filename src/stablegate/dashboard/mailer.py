"""Mail from the dashboard (verification links) through the operator's SMTP server.

``STABLEGATE_SMTP_URL``: ``smtp://`` (plain, for a relay on the same host or network),
``smtp+starttls://`` (STARTTLS, port 587 by default) or ``smtps://`` (TLS from the first byte,
port 465), with the user and password, percent-encoded, in the URL. The standard library's
smtplib runs in a thread, one connection per message: the dashboard sends a few.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import structlog

log = structlog.get_logger("stablegate.dashboard")

DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
TIMEOUT_S = 20.0


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    scheme: str  # smtp | smtp+starttls | smtps
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError("the SMTP URL must be smtp://, smtp+starttls:// or smtps://")
        return cls(
            host=parts.hostname,
            port=parts.port or DEFAULT_PORTS[parts.scheme],
            scheme=parts.scheme,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


class Mailer:
    """Sends one message per call; ``server`` None means no SMTP (links go to the operator's
    ``stablegate dashboard links`` instead)."""

    def __init__(self, server: SmtpServer | None, sender: str) -> None:
        self.server = server
        self.sender = sender

    @property
    def configured(self) -> bool:
        return self.server is not None

    async def send(self, to: str, subject: str, body: str) -> bool:
        """True once the server accepted the message; False without SMTP or when sending
        failed (logged, never raised: the link stays available to the operator)."""
        if self.server is None:
            return False
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        try:
            await asyncio.to_thread(_deliver, self.server, message)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning(
                "mail_not_sent", host=self.server.host, error=f"{type(exc).__name__}: {exc}"
            )
            return False
        return True


def _deliver(server: SmtpServer, message: EmailMessage) -> None:
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if server.scheme == "smtps":
        client = smtplib.SMTP_SSL(server.host, server.port, timeout=TIMEOUT_S, context=context)
    else:
        client = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT_S)
    with client:
        if server.scheme == "smtp+starttls":
            client.starttls(context=context)
        if server.username is not None:
            client.login(server.username, server.password or "")
        client.send_message(message)
