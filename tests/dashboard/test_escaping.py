"""What a merchant types (business name, email address, key labels) and what a browser sends (its
user agent) is shown as text on every page: markup in it stays inert, and pages load nothing
from elsewhere and run no inline code."""

from __future__ import annotations

import re

from fastapi import FastAPI
from markupsafe import escape
from tests.dashboard.dashboard_support import Browser, MailSink, signed_up_and_in

from stablegate.web.pages import CONTENT_SECURITY_POLICY

NAME = "<script>alert('name')</script> & \"Co\""
# Markup cannot be in an address (refused below); these are its characters that HTML cares about.
EMAIL = "o'neil&{x}|y=`z`@evil.example"
LABEL = "<svg onload=alert('label')>"
AGENT = "<script>alert('agent')</script>"
PAYLOADS = (NAME, LABEL, AGENT, "o'neil&{x}")


def assert_inert(html: str) -> None:
    for payload in PAYLOADS:
        assert payload not in html
    assert "<script>" not in html and "<svg" not in html and "<img" not in html
    # The only scripts are the dashboard's own file.
    assert re.findall(r"<script[^>]*>", html) == [
        tag for tag in re.findall(r"<script[^>]*>", html) if 'src="/dashboard/static/' in tag
    ]


async def test_hostile_text_is_escaped_on_every_page(app: FastAPI, mail: MailSink) -> None:
    async with Browser(app, user_agent=AGENT) as browser:
        signed_up = await browser.sign_up(NAME, EMAIL)
        assert signed_up.status_code == 200, signed_up.text
        assert_inert(signed_up.text)
        assert str(escape(EMAIL.lower())) in signed_up.text
        [message] = mail.to(EMAIL.lower())
        assert message["Subject"] == f"Confirm your email address for {NAME}"
        await browser.verify(mail.link_for(EMAIL.lower()))
        await signed_up_and_in_again(browser)
        created = await browser.post("/dashboard/keys", {"label": LABEL})
        assert created.status_code == 200
        assert_inert(created.text)
        for path in ("/dashboard/keys", "/dashboard/security"):
            page = await browser.get(path)
            assert page.status_code == 200
            assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert_inert(page.text)
            assert str(escape(NAME)) in page.text
        keys = (await browser.get("/dashboard/keys")).text
        assert str(escape(LABEL)) in keys
        assert str(escape(AGENT)) in (await browser.get("/dashboard/security")).text

        # A form that fails shows what was typed, escaped.
        again = await browser.sign_up(NAME, "second" + EMAIL, password="short")
        assert again.status_code == 400
        assert_inert(again.text)
        for hostile in ('"><img/src/onerror=alert(1)>@evil.example', "a@b.example<script>"):
            refused = await browser.sign_up(NAME, hostile)
            assert refused.status_code == 400 and "Enter a valid email address." in refused.text
            assert_inert(refused.text)


async def signed_up_and_in_again(browser: Browser) -> None:
    answer = await browser.log_in(EMAIL)
    assert answer.status_code == 303, answer.text


async def test_every_page_sends_the_strict_headers(app: FastAPI, mail: MailSink) -> None:
    async with Browser(app) as browser:
        pages = [await browser.get("/dashboard/signup"), await browser.get("/dashboard/login")]
        await signed_up_and_in(browser, mail, "Shop", "owner@shop.example")
        pages += [await browser.get("/dashboard/keys"), await browser.get("/dashboard/security")]
        pages.append(await browser.post("/dashboard/keys", {"label": "x"}))
    for page in pages:
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert " style=" not in page.text and "<style" not in page.text
        assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)  # no inline script
