"""A page that needs a log-in (the Greenfield authorization) sends the browser to the log-in
with ``next``: after the password (and the second factor) the browser lands there, and only
ever on a dashboard path of this gateway."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI
from tests.dashboard.dashboard_support import PASSWORD, Browser, MailSink, signed_up_and_in
from tests.dashboard.test_second_factor_pages import enrol, now_code

from stablegate.clock import FakeClock

EMAIL = "owner@shop.example"
WANTED = "/dashboard/orders?status=completed"


async def log_in_to(browser: Browser, next_path: str) -> str:
    page = await browser.get(f"/dashboard/login?next={quote(next_path)}")
    assert page.status_code == 200
    answer = await browser.post(
        "/dashboard/login",
        {"email": EMAIL, "password": PASSWORD, "next": next_path},
        token_from=f"/dashboard/login?next={quote(next_path)}",
    )
    assert answer.status_code == 303, answer.text
    return str(answer.headers["location"])


async def test_the_log_in_leads_back_to_a_dashboard_path_only(app: FastAPI, mail: MailSink) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", EMAIL)
        form = await browser.get(f"/dashboard/login?next={quote(WANTED)}")
        assert f'name="next" value="{WANTED.replace("?", "?")}"' in form.text
        assert await log_in_to(browser, WANTED) == WANTED
        for foreign in (
            "https://evil.example/dashboard/",
            "//evil.example/dashboard/",
            "/dashboard\\@evil.example",
            "/cashier/x",
            "/dashboard/ orders",
            "/dashboard/" + "a" * 2100,
        ):
            assert await log_in_to(browser, foreign) == "/dashboard/keys", foreign


async def test_the_second_factor_keeps_where_to_go(
    app: FastAPI, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", EMAIL)
        secret, _codes = await enrol(browser, clock)
        await browser.post("/dashboard/logout", {}, token_from="/dashboard/security")
        step = await log_in_to(browser, WANTED)
        assert step == f"/dashboard/login/second-factor?next={quote(WANTED, safe='')}"
        page = await browser.get(step)
        assert 'name="next"' in page.text
        done = await browser.post(
            "/dashboard/login/second-factor",
            {"code": now_code(secret, clock), "next": WANTED},
            token_from=step,
        )
        assert done.status_code == 303 and done.headers["location"] == WANTED
