"""``stablegate dashboard ...``: what the operator does for the merchant dashboard.

- ``links``: the verification and password reset links waiting to be used, for an operator
  without SMTP (or whose mail did not arrive) to hand out;
- ``invite``: a sign-up code for the ``invite`` policy, printed once.

Approving a merchant under the ``approval`` policy is ``stablegate merchant approve``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import SystemClock
from stablegate.config import Settings
from stablegate.console import JsonFlag, error_console, print_record, print_rows, with_session
from stablegate.dashboard import invites, links
from stablegate.secret_box import load_secret_box

dashboard_app = typer.Typer(
    help="The merchant dashboard: pending verification and reset links, invite codes."
)


@dashboard_app.command("links")
def pending_links(as_json: JsonFlag = False) -> None:
    """Unused, unexpired links: email verification (accounts not yet verified) and password
    reset (purpose reset_password, asked for on the log-in page). Send each to its address
    yourself, and only to it: a reset link sets the account's password."""

    async def work(session: AsyncSession, settings: Settings) -> list[links.PendingLink]:
        key = load_secret_box(settings).derive_key("dashboard-links")
        return await links.pending_links(session, SystemClock(), key, settings.public_url)

    rows = [
        {
            "email": link.email,
            "merchantId": link.merchant_id,
            "purpose": link.purpose,
            "expiresAt": link.expires_at_ms,
            "url": link.url,
        }
        for link in with_session(work)
    ]
    print_rows(rows, ["email", "merchantId", "purpose", "expiresAt", "url"], as_json)


@dashboard_app.command("invite")
def invite(
    days: Annotated[int, typer.Option(help="Days the code stays valid (1-365).")] = 7,
    note: Annotated[
        str | None, typer.Option(help="Whom it is for (kept in the audit log).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """A single-use sign-up code for the invite policy; printed ONCE."""

    async def work(session: AsyncSession, _settings: Settings) -> dict[str, object]:
        code, made = await invites.create_invite(session, SystemClock(), days=days, note=note)
        return {"inviteId": made.id, "code": code, "expiresAt": made.expires_at_ms}

    print_record(with_session(work), as_json)
    if not as_json:
        error_console.print("Give the code to the merchant now: it is not shown again.")
