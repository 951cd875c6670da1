"""English and Simplified Chinese, chosen like the cashier's and kept in a cookie; the mail goes
out in the language of the sign-up."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from tests.dashboard.dashboard_support import Browser, MailSink, signed_up_and_in

from stablegate.admin.i18n import CONSOLE_MESSAGES
from stablegate.compat.i18n import INTEGRATION_MESSAGES
from stablegate.dashboard.i18n import AREAS, MESSAGES


@pytest.mark.parametrize(
    "messages",
    [MESSAGES, CONSOLE_MESSAGES, INTEGRATION_MESSAGES, *(area.MESSAGES for area in AREAS)],
    ids=["dashboard", "console", "integrations", *(area.__name__ for area in AREAS)],
)
def test_both_languages_have_every_message_with_the_same_fields(
    messages: dict[str, dict[str, str]],
) -> None:
    assert messages["en"].keys() == messages["zh-CN"].keys()
    for key, english in messages["en"].items():
        fields = {part.split("}")[0] for part in english.split("{")[1:]}
        chinese = {part.split("}")[0] for part in messages["zh-CN"][key].split("{")[1:]}
        assert fields == chinese, key


def test_no_dashboard_message_is_in_two_areas() -> None:
    keys = [key for area in AREAS for key in area.MESSAGES["en"]]
    assert len(keys) == len(set(keys)) == len(MESSAGES["en"])


async def test_the_language_links_keep_the_pages_filters(app: FastAPI, mail: MailSink) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", "owner@shop.example")
        page = await browser.get("/dashboard/orders?status=completed&q=x&lang=en")
        assert 'href="/dashboard/orders?status=completed&amp;q=x&amp;lang=zh-CN"' in page.text


async def test_accept_language_then_the_lang_link_then_the_cookie(
    app: FastAPI, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        chinese = await browser.get(
            "/dashboard/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"}
        )
        assert '<html lang="zh-CN">' in chinese.text and "登录" in chinese.text
        assert chinese.headers["content-language"] == "zh-CN"
        english = await browser.get(
            "/dashboard/login?lang=en", headers={"Accept-Language": "zh-CN"}
        )
        assert '<html lang="en">' in english.text
        # The choice is kept: the next page and a form's answer stay in English.
        later = await browser.get("/dashboard/signup", headers={"Accept-Language": "zh-CN"})
        assert '<html lang="en">' in later.text

        await browser.get("/dashboard/signup?lang=zh-CN")
        answer = await browser.sign_up("茶馆", "cha@guan.example", password="short")
        assert "密码至少需要 12 个字符。" in answer.text
        made = await browser.sign_up("茶馆", "cha@guan.example")
        assert "我们已向 cha@guan.example 发送了一个链接" in made.text
        [message] = mail.to("cha@guan.example")
        assert message["Subject"] == "确认 茶馆 的邮箱地址"
