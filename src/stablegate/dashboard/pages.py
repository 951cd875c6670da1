"""How a dashboard page is answered: language, templates, static files, cookies, forms.

Every answer carries the cashier's strict Content-Security-Policy and ``no-store``
(:mod:`stablegate.web.pages`); templates are autoescaped, so whatever a merchant types is shown
as text. Cookies are scoped to ``/dashboard``, HttpOnly, SameSite=Lax, and Secure when the
public URL is https.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.dashboard.context import DashboardContext, dashboard_context
from stablegate.dashboard.csrf import check_form_token, form_token
from stablegate.dashboard.errors import CsrfRefused
from stablegate.dashboard.i18n import LANGUAGES, choose_language, translator
from stablegate.dashboard.passwords import MAX_LENGTH, MIN_LENGTH
from stablegate.dashboard.sessions import SESSION_TTL_MS, Viewer, load_viewer
from stablegate.errors import GatewayError, RateLimited
from stablegate.web.i18n import Translator
from stablegate.web.pages import load_static, page_headers, page_templates
from stablegate.web.security import read_body, request_ip

PREFIX = "/dashboard"
SESSION_COOKIE = "stablegate_session"
FORM_COOKIE = "stablegate_form"  # the pre-session value behind the log-in and sign-up forms
LANGUAGE_COOKIE = "stablegate_lang"
MAX_FORM_BYTES = 16_384
MAX_FORM_FIELDS = 20
# Pages whose form a POST answers again (an error, a new key): the language links go back there.
LANGUAGE_TARGETS = {f"{PREFIX}/signup", f"{PREFIX}/login", f"{PREFIX}/keys"}
LANGUAGE_TARGETS |= {f"{PREFIX}/login/second-factor", f"{PREFIX}/forgot"}

_templates = page_templates("stablegate.dashboard")


STATIC = load_static("stablegate.dashboard", ("dashboard.css", "dashboard.js"))


def static_url(name: str) -> str:
    # Versioned by content, so the files can be cached for good.
    return f"{PREFIX}/static/{name}?v={STATIC[name].version}"


def shown_time(ms: int) -> tuple[str, str]:
    """(machine-readable, shown) forms of a time: ISO 8601 and ``YYYY-MM-DD HH:MM UTC``."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ"), moment.strftime("%Y-%m-%d %H:%M UTC")


@dataclass
class Page:
    """One request to a dashboard page: its context, language and the cookies to set.

    The operator console (:mod:`stablegate.admin`) answers its pages with a subclass that
    changes the class attributes: its own path (so its cookies are never sent to the merchants'
    pages, nor theirs to it), templates and messages."""

    prefix: ClassVar[str] = PREFIX
    session_cookie: ClassVar[str] = SESSION_COOKIE
    language_targets: ClassVar[frozenset[str]] = frozenset(LANGUAGE_TARGETS)
    templates: ClassVar[Environment] = _templates
    site: ClassVar[str] = "dashboard"  # the message naming the site in titles and the top bar
    # The menu of a signed-in page: (path below the prefix, message of its label).
    menu: ClassVar[tuple[tuple[str, str], ...]] = (
        ("overview", "nav_overview"),
        ("orders", "orders_nav"),
        ("keys", "nav_keys"),
        ("webhooks", "nav_webhooks"),
        ("settings", "nav_settings"),
        ("integrations", "nav_integrations"),  # served by stablegate.compat
        ("security", "nav_security"),
    )

    ctx: DashboardContext
    request: Request
    language: str
    cookies: list[tuple[str, str, int | None]] = field(default_factory=list)  # name, value, age
    expired: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, request: Request) -> Self:
        requested = request.query_params.get("lang")
        language = choose_language(
            requested, request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language")
        )
        page = cls(dashboard_context(request), request, language)
        if requested in LANGUAGES:
            page.cookies.append((LANGUAGE_COOKIE, language, 365 * 86400))
        return page

    @property
    def t(self) -> Translator:
        return self.translator(self.language)

    @staticmethod
    def translator(language: str) -> Translator:
        return translator(language)

    @property
    def ip(self) -> str:
        return request_ip(self.request, self.ctx.web)

    @property
    def user_agent(self) -> str:
        return self.request.headers.get("user-agent", "")

    def error_text(self, error: GatewayError) -> str:
        seconds = error.retry_after if isinstance(error, RateLimited) else 0
        key = f"error_{error.code}"
        return self.t(key, min=MIN_LENGTH, max=MAX_LENGTH, seconds=seconds)

    def languages(self) -> list[dict[str, Any]]:
        """Links to this page in each language; a POST's answer links to the page that shows
        the same form, or to the dashboard's start."""
        path = self.request.url.path
        kept: list[tuple[str, str]] = []
        if self.request.method != "GET":
            if path not in self.language_targets:
                path = f"{self.prefix}/"
        else:
            # The same page in another language: its filters and page stay.
            kept = [(k, v) for k, v in self.request.query_params.multi_items() if k != "lang"]
        return [
            {
                "code": code,
                "name": name,
                "href": f"{path}?{urlencode([*kept, ('lang', code)])}",
                "current": code == self.language,
            }
            for code, name in LANGUAGES.items()
        ]

    async def viewer(self, session: AsyncSession) -> Viewer | None:
        """The signed-in user of the session cookie, if it names a live session."""
        return await load_viewer(session, self.ctx.web.clock, self.session_token)

    # -- the form token ------------------------------------------------------------------------

    def session_csrf(self, viewer: Viewer) -> str:
        return form_token(self.ctx.csrf_key, "session", viewer.token)

    def check_session_form(self, viewer: Viewer, form: dict[str, str]) -> None:
        """Raise :class:`CsrfRefused` unless the form carries the signed-in session's token."""
        check_form_token(self.session_csrf(viewer), form.get("csrf_token"))

    def form_csrf(self) -> str:
        """The log-in and sign-up forms' token, from the pre-session cookie (set if missing)."""
        value = self.request.cookies.get(FORM_COOKIE)
        if not value or len(value) > 100:
            value = secrets.token_urlsafe(32)
            self.cookies.append((FORM_COOKIE, value, None))
        return form_token(self.ctx.csrf_key, "pre", value)

    def expected_form_csrf(self) -> str | None:
        value = self.request.cookies.get(FORM_COOKIE)
        return form_token(self.ctx.csrf_key, "pre", value) if value else None

    # -- answers -------------------------------------------------------------------------------

    def render(
        self,
        template: str,
        *,
        status: int = 200,
        viewer: Viewer | None = None,
        csrf_token: str | None = None,
        headers: dict[str, str] | None = None,
        current: str = "",
        **context: Any,
    ) -> Response:
        t = self.t
        html = self.templates.get_template(template).render(
            t=t,
            lang=self.language,
            static_url=static_url,
            languages=self.languages(),
            viewer=viewer,
            current=current,
            csrf_token=csrf_token
            if csrf_token is not None
            else (self.session_csrf(viewer) if viewer else ""),
            shown_time=shown_time,
            # Shared templates (log-in's second step, Security's sections) post under the
            # page's own path: /dashboard or the console's /admin.
            prefix=self.prefix,
            security_path=f"{self.prefix}/security",
            site=self.site,
            menu=self.menu,
            **{"who": (viewer.merchant_name, viewer.email) if viewer else None, **context},
        )
        extra = {"Content-Language": self.language, "Vary": "Accept-Language, Cookie"}
        response = HTMLResponse(
            html, status_code=status, headers=page_headers({**extra, **(headers or {})})
        )
        return self.finish(response)

    def refusal(self, exc: GatewayError, viewer: Viewer | None = None) -> Response:
        """A refused request as a page: CSRF (403), throttling (429), not found (404)."""
        title = self.t("not_found_title") if exc.status == 404 else self.t("error_summary")
        return self.render(
            "message.html",
            status=exc.status,
            viewer=viewer,
            title=title,
            lines=[self.error_text(exc)],
            headers=dict(exc.headers),
            **self.refusal_links(),
        )

    def refusal_links(self) -> dict[str, Any]:
        """What a refusal page offers to go on with (the dashboard: its menu, when signed in)."""
        return {}

    def redirect(self, path: str) -> Response:
        return self.finish(RedirectResponse(path, status_code=303, headers=page_headers()))

    def finish(self, response: Response) -> Response:
        for name, value, max_age in self.cookies:
            response.set_cookie(
                name,
                value,
                max_age=max_age,
                path=self.prefix,
                secure=self.ctx.secure_cookies,
                httponly=True,
                samesite="lax",
            )
        for name in self.expired:
            response.delete_cookie(
                name,
                path=self.prefix,
                secure=self.ctx.secure_cookies,
                httponly=True,
                samesite="lax",
            )
        return response

    def start_session_cookie(self, token: str) -> None:
        self.cookies.append((self.session_cookie, token, SESSION_TTL_MS // 1000))

    def end_session_cookie(self) -> None:
        self.expired.append(self.session_cookie)

    @property
    def session_token(self) -> str | None:
        return self.request.cookies.get(self.session_cookie)


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded form of a POST (the first value of each field); anything else, or a form
    too large or with too many fields, reads as empty, which no CSRF check passes."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = await read_body(request, MAX_FORM_BYTES)
    if kind != "application/x-www-form-urlencoded":
        return {}
    try:
        pairs = parse_qsl(
            body.decode("utf-8", "replace"),
            keep_blank_values=True,
            max_num_fields=MAX_FORM_FIELDS,
        )
    except ValueError:
        return {}
    form: dict[str, str] = {}
    for name, value in pairs:
        # NUL cannot be stored in PostgreSQL text, and no field needs it.
        form.setdefault(name, value.replace("\x00", "\ufffd"))
    return form


async def signed_in_form(
    page: Page, session: AsyncSession
) -> tuple[Viewer, dict[str, str]] | Response:
    """The viewer and form of a signed-in page's POST, its CSRF token checked; or the answer
    that ends the request (the log-in page without a session, 403 with a wrong token)."""
    form = await read_form(page.request)
    viewer = await page.viewer(session)
    if viewer is None:
        return page.redirect(f"{page.prefix}/login")
    try:
        page.check_session_form(viewer, form)
    except CsrfRefused as exc:
        return page.refusal(exc, viewer)
    return viewer, form
