"""What the dashboard's pages share, built once per app from the gateway's context: the mailer,
the form limits, the keys that sign links and CSRF tokens, the cookie flags."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from stablegate.dashboard.mailer import Mailer, SmtpServer
from stablegate.dashboard.throttle import FormThrottle
from stablegate.web.context import WebContext, get_context


@dataclass(frozen=True)
class DashboardContext:
    web: WebContext
    mailer: Mailer
    throttle: FormThrottle
    link_key: bytes
    csrf_key: bytes
    secure_cookies: bool  # the public URL is https: cookies only ever go over TLS

    @classmethod
    def build(cls, web: WebContext) -> DashboardContext:
        settings = web.settings
        smtp = settings.smtp_url
        return cls(
            web=web,
            mailer=Mailer(
                SmtpServer.from_url(smtp.get_secret_value()) if smtp is not None else None,
                settings.mail_sender,
            ),
            throttle=FormThrottle(web.limiter.backend),
            link_key=web.secret_box.derive_key("dashboard-links"),
            csrf_key=web.secret_box.derive_key("dashboard-csrf"),
            secure_cookies=settings.public_url.lower().startswith("https://"),
        )


def dashboard_context(request: Request) -> DashboardContext:
    """Built on first use and kept in the app's state (cheap and deterministic, so two requests
    building it at once agree)."""
    state = request.app.state
    ctx: DashboardContext | None = getattr(state, "dashboard", None)
    if ctx is None:
        ctx = state.dashboard = DashboardContext.build(get_context(request))
    return ctx
