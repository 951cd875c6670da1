"""The console's settings with SMTP: the sign-up policy it stores applies to the very next
sign-up (every API process reads it per request), invite codes made here let one merchant sign
up, and every change is audited."""

from __future__ import annotations

import re

from fastapi import FastAPI
from sqlalchemy import select
from tests.admin.console_support import OPERATOR, Console, make_operator
from tests.dashboard.dashboard_support import Browser, MailSink

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.models import AuditEntry

SETTINGS = "/admin/settings"
CODE = re.compile(r'id="invite-code">([^<]+)<')


async def test_the_policy_applies_to_the_next_sign_up_and_invites_let_one_merchant_in(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    await make_operator(gateway, clock)
    async with Console(app) as console, Browser(app) as shop:
        await console.signed_in()
        page = await console.get(SETTINGS)
        assert re.search(r'value="open" checked', page.text)
        saved = await console.post(f"{SETTINGS}/policy", {"policy": "invite"}, token_from=SETTINGS)
        assert saved.status_code == 303 and saved.headers["location"] == f"{SETTINGS}?saved=policy"
        assert 'name="invite_code"' in (await shop.get("/dashboard/signup")).text
        refused = await shop.sign_up("Shop", "a@shop.example")
        assert refused.status_code == 400

        made = await console.post(f"{SETTINGS}/invite", {"note": "for <Shop>"}, token_from=SETTINGS)
        assert made.status_code == 200
        found = CODE.search(made.text)
        assert found is not None
        code = found.group(1)
        # Shown once: the settings page never shows it again.
        assert code not in (await console.get(SETTINGS)).text
        assert (await shop.sign_up("Shop", "a@shop.example", invite_code=code)).status_code == 200
        again = await shop.sign_up("Other", "b@shop.example", invite_code=code)
        assert again.status_code == 400

        bad = await console.post(f"{SETTINGS}/policy", {"policy": "everyone"}, token_from=SETTINGS)
        assert bad.status_code == 400 and 'id="policy-error"' in bad.text
    async with session_scope(gateway.sessions) as session:
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "gateway.signup_policy")
        )
        assert entry is not None and entry.actor == f"admin:{OPERATOR}"
        assert entry.details == {"from": "open", "to": "invite"}
        invite = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "signup_invite.created")
        )
        assert invite is not None and invite.actor == f"admin:{OPERATOR}"
