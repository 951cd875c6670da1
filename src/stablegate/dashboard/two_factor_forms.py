"""The two-factor forms of a Security page, for whoever holds the second factor: a merchant's
dashboard user (:mod:`stablegate.dashboard.security_pages`) or an operator of the console
(:mod:`stablegate.admin.security_pages`). Each route checks the session and the form's token,
then hands the form to :class:`TwoFactorForms`.

- ``start`` makes a secret (sealed, not in force yet); ``cancel`` drops an unconfirmed one.
- ``with_code`` takes a current code from the app: it confirms an enrolment (the first recovery
  codes) or replaces the recovery codes; either answer shows the codes this once.
- ``disable`` needs the password and a code or a recovery code.

Wrong codes and passwords count against the per-account and per-IP limits of the log-in's
second step, so a stolen session guesses no faster here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.dashboard import second_factor
from stablegate.dashboard.errors import AccountError
from stablegate.dashboard.pages import Page
from stablegate.dashboard.passwords import verify_password
from stablegate.db.engine import session_scope
from stablegate.errors import GatewayError, RateLimited
from stablegate.secret_box import SecretBox

MAX_CODE = 40


class Holder(second_factor.SecondFactorHolder, Protocol):
    password_hash: str
    email: str


def two_factor_view(box: SecretBox, holder: Holder, issuer: str) -> dict[str, Any]:
    """What the Security page's two-factor section shows: on or off, since when, recovery codes
    left, and during an enrolment the QR code and the key to type."""
    enrolment = None
    secret = second_factor.secret_of(box, holder)
    if second_factor.is_enrolling(holder) and secret is not None:
        uri = second_factor.provisioning_uri(secret, account=holder.email, issuer=issuer)
        enrolment = {
            "qr": second_factor.qr_data_uri(uri),
            "secret": second_factor.grouped_secret(secret),
        }
    return {
        "two_factor_on": second_factor.is_enabled(holder),
        "two_factor_since": holder.totp_enabled_at_ms,
        "recovery_left": second_factor.recovery_codes_left(holder),
        "enrolment": enrolment,
    }


@dataclass(frozen=True)
class TwoFactorForms:
    page: Page
    account_id: str  # whose wrong codes the throttle counts
    # The holder's row, loaded in the given session (it exists: the session check joined it).
    load: Callable[[AsyncSession], Awaitable[Holder]]
    # The Security page again with the error in a section's form.
    refused: Callable[[str, GatewayError], Awaitable[Response]]
    # The page showing recovery codes (``first``: two-factor was just turned on).
    codes_page: Callable[[list[str], bool], Response]

    @property
    def _security(self) -> str:
        return f"{self.page.prefix}/security"

    async def start(self) -> Response:
        web = self.page.ctx.web
        async with session_scope(web.sessions) as session:
            holder = await self.load(session)
            if not second_factor.is_enabled(holder):
                second_factor.start_enrolment(web.secret_box, holder)
        return self.page.redirect(f"{self._security}#two-factor")

    async def cancel(self) -> Response:
        async with session_scope(self.page.ctx.web.sessions) as session:
            second_factor.cancel_enrolment(await self.load(session))
        return self.page.redirect(f"{self._security}?notice=two_factor_cancelled#two-factor")

    async def with_code(self, form: dict[str, str], *, first: bool) -> Response:
        """Confirm the enrolment (``first``) or replace the recovery codes."""
        page = self.page
        ctx, web = page.ctx, page.ctx.web
        act = second_factor.enable if first else second_factor.replace_recovery_codes
        try:
            await ctx.throttle.check_code(self.account_id, page.ip)
            async with session_scope(web.sessions) as session:
                holder = await self.load(session)
                code = form.get("code", "")[:MAX_CODE]
                codes = await act(session, web.secret_box, holder, code, now_ms=web.clock.now_ms())
                if codes is None:
                    raise AccountError("the code is wrong", code="invalid_code")
        except (AccountError, RateLimited) as exc:
            if exc.code == "invalid_code":
                await ctx.throttle.note_failed_code(self.account_id, page.ip)
            return await self.refused("confirm" if first else "recovery", exc)
        return self.codes_page(codes, first)

    async def disable(self, form: dict[str, str]) -> Response:
        page = self.page
        ctx, web = page.ctx, page.ctx.web
        try:
            await ctx.throttle.check_code(self.account_id, page.ip)
            async with session_scope(web.sessions) as session:
                stored = (await self.load(session)).password_hash
            # Outside any transaction: Argon2 takes tens of milliseconds.
            if not await verify_password(stored, form.get("password", "")):
                raise AccountError("the password is wrong", code="wrong_password")
            async with session_scope(web.sessions) as session:
                holder = await self.load(session)
                accepted = await second_factor.check_second_factor(
                    session,
                    web.secret_box,
                    holder,
                    form.get("code", "")[:MAX_CODE],
                    now_ms=web.clock.now_ms(),
                )
                if accepted is None:
                    raise AccountError("the code is wrong", code="invalid_code")
                await second_factor.disable(session, holder)
        except (AccountError, RateLimited) as exc:
            if exc.code in ("invalid_code", "wrong_password"):
                await ctx.throttle.note_failed_code(self.account_id, page.ip)
            return await self.refused("disable", exc)
        return page.redirect(f"{self._security}?notice=two_factor_disabled#two-factor")
