"""The console tests' parts: an operator made as ``stablegate admin create`` makes one, and a
browser (the dashboard tests' :class:`Browser`) that logs in to the console."""

from __future__ import annotations

import httpx
from tests.dashboard.dashboard_support import PASSWORD, Browser

from stablegate.admin.accounts import create_operator
from stablegate.api.context import GatewayContext
from stablegate.clock import Clock
from stablegate.dashboard.passwords import hash_password
from stablegate.db.engine import session_scope
from stablegate.models.operator_account import OperatorAccount

OPERATOR = "ops@gateway.example"
CONSOLE_COOKIE = "stablegate_console"


async def make_operator(
    gateway: GatewayContext, clock: Clock, email: str = OPERATOR, password: str = PASSWORD
) -> OperatorAccount:
    password_hash = await hash_password(password)
    async with session_scope(gateway.sessions) as session:
        return await create_operator(session, clock, email, password_hash)


class Console(Browser):
    """A browser that uses the console."""

    async def log_in(self, email: str = OPERATOR, password: str = PASSWORD) -> httpx.Response:
        return await self.post("/admin/login", {"email": email, "password": password})

    async def signed_in(self, email: str = OPERATOR) -> Console:
        answer = await self.log_in(email)
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/admin/merchants"
        return self

    @property
    def console_cookie(self) -> str | None:
        return self.client.cookies.get(CONSOLE_COOKIE, domain="pay.example.com", path="/admin")
