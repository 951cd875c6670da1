"""How a console page is answered: the dashboard's :class:`~stablegate.dashboard.pages.Page`
(strict CSP, ``no-store``, autoescaped templates, the two languages, CSRF on every form) under
``/admin``, with its own session cookie (scoped to ``/admin``, so a merchant's dashboard cookie
is never sent here, nor this one there), templates and messages.

:func:`signed_in` and :func:`signed_in_form` are the prologue of every page past the log-in:
the operator of the session cookie (or a redirect to the log-in), and for a POST the form with
its CSRF token checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.admin.i18n import translator
from stablegate.admin.sessions import Operator, load_operator
from stablegate.dashboard.csrf import check_form_token, form_token
from stablegate.dashboard.errors import CsrfRefused
from stablegate.dashboard.pages import Page, read_form
from stablegate.db.engine import session_scope
from stablegate.web.i18n import Translator
from stablegate.web.pages import page_templates

PREFIX = "/admin"
LOGIN = f"{PREFIX}/login"
SECOND_STEP = f"{PREFIX}/login/second-factor"

# The console's own templates first, then the dashboard's shared sections (two-factor,
# sessions, recovery codes), which extend whichever ``base.html`` comes first: the console's.
_templates = page_templates("stablegate.admin", "stablegate.dashboard")


class ConsolePage(Page):
    prefix: ClassVar[str] = PREFIX
    session_cookie: ClassVar[str] = "stablegate_console"
    language_targets: ClassVar[frozenset[str]] = frozenset({LOGIN, SECOND_STEP})
    templates: ClassVar[Any] = _templates
    site: ClassVar[str] = "console"
    menu: ClassVar[tuple[tuple[str, str], ...]] = (
        ("merchants", "nav_merchants"),
        ("chains", "nav_chains"),
        ("sweeps", "nav_sweeps"),
        ("audit", "nav_audit"),
        ("settings", "nav_gateway_settings"),
        ("security", "nav_security"),
    )

    @staticmethod
    def translator(language: str) -> Translator:
        return translator(language)

    async def operator(self, session: AsyncSession) -> Operator | None:
        return await load_operator(session, self.ctx.web.clock, self.session_token)

    def operator_csrf(self, operator: Operator) -> str:
        # Its own kind: a dashboard session's token never passes here.
        return form_token(self.ctx.csrf_key, "operator", operator.token)

    def check_operator_form(self, operator: Operator, form: dict[str, str]) -> None:
        check_form_token(self.operator_csrf(operator), form.get("csrf_token"))

    def console(
        self,
        template: str,
        operator: Operator,
        *,
        status: int = 200,
        current: str = "",
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> Response:
        """A signed-in page: the operator's menu and form token."""
        return self.render(
            template,
            status=status,
            headers=headers,
            current=current,
            csrf_token=self.operator_csrf(operator),
            operator=operator,
            who=(self.t("operator_label"), operator.email),
            **context,
        )

    def refusal_links(self) -> dict[str, Any]:
        return {"next_link": {"href": f"{PREFIX}/", "text": self.t("console_home")}}

    def public(self, template: str, **context: Any) -> Response:
        """A page before the log-in (no menu)."""
        context.setdefault("operator", None)
        return self.render(template, **context)


@dataclass(frozen=True)
class SignedIn:
    page: ConsolePage
    operator: Operator
    form: dict[str, str]


async def signed_in(request: Request) -> SignedIn | Response:
    """The operator of a GET, or the redirect to the log-in."""
    page = ConsolePage.of(request)
    async with session_scope(page.ctx.web.sessions) as session:
        operator = await page.operator(session)
    if operator is None:
        return page.redirect(LOGIN)
    return SignedIn(page, operator, {})


async def signed_in_form(request: Request) -> SignedIn | Response:
    """The operator and form of a POST, its CSRF token checked (403 page when wrong)."""
    page = ConsolePage.of(request)
    form = await read_form(request)
    async with session_scope(page.ctx.web.sessions) as session:
        operator = await page.operator(session)
    if operator is None:
        return page.redirect(LOGIN)
    try:
        page.check_operator_form(operator, form)
    except CsrfRefused as exc:
        return page.refusal(exc)
    return SignedIn(page, operator, form)
