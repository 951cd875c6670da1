"""``stablegate rates show|set-fixed|unset-fixed|set-rule|unset-rule`` and the fetch command's
body, against the test's database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
import typer
from sqlalchemy import select
from tests.cli_env import cli_env, runner  # noqa: F401  (fixture)
from tests.support import MerchantKeys

from stablegate.api.context import GatewayContext
from stablegate.cli import app
from stablegate.clock import FakeClock, SystemClock
from stablegate.config import Settings
from stablegate.db.engine import session_scope
from stablegate.leases import acquire_or_renew
from stablegate.models import AuditEntry, RateQuote
from stablegate.rates import store
from stablegate.rates.commands import fetch_rates
from stablegate.rates.fetcher import LEASE_NAME
from stablegate.rates.quote import Quote, SourceError, SourceFault


def fresh(source: str, pair: str, mid: str) -> Quote:
    base, currency = pair.split("/")
    now = SystemClock().now_ms()  # the commands read the system clock
    return Quote(source, base, currency, Decimal(mid), None, None, now - 2000)


@pytest_asyncio.fixture
async def market(gateway: GatewayContext) -> None:
    quotes = [
        fresh("ecb", "EUR/USD", "1.08"),
        fresh("ecb", "EUR/CNY", "7.776"),
        fresh("kraken", "USDT/CNY", "7.21"),
        fresh("okx", "USDT/CNY", "7.23"),
        fresh("coinbase", "USDT/CNY", "7.20"),
    ]
    async with session_scope(gateway.sessions) as session:
        await store.save_quotes(session, quotes, SystemClock().now_ms())


def invoke(*args: str) -> Any:
    result = runner.invoke(app, ["rates", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def refused(*args: str) -> str:
    result = runner.invoke(app, ["rates", *args])
    assert result.exit_code == 2, result.output
    return result.output


def rate_of(shown: dict[str, Any], symbol: str, currency: str) -> dict[str, Any]:
    [row] = [r for r in shown["rates"] if (r["symbol"], r["currency"]) == (symbol, currency)]
    return row


PAIR = ("--symbol", "USDT", "--currency", "CNY")


def test_show_lists_each_pairs_rate_with_its_sources(
    cli_env: Settings,  # noqa: F811
    market: None,
) -> None:
    shown = invoke("show")
    row = rate_of(shown, "USDT", "CNY")
    assert row["rate"] == "7.21" and row["rateSource"] == "median(kraken,coinbase,okx)"
    assert row["sources"] == ["kraken 7.21", "coinbase 7.2", "okx 7.23"]
    assert row["ageSeconds"] >= 2
    assert shown["rules"] == []
    # USDT has no USD quote stored: no USD, EUR... rows; the ECB alone prices nothing.
    assert {(r["symbol"], r["currency"]) for r in shown["rates"]} == {("USDT", "CNY")}
    table = runner.invoke(app, ["rates", "show"])
    assert table.exit_code == 0, table.output
    assert "median(kraken,coinbase,okx)" in table.stdout and "rules" in table.stdout


def test_set_and_unset_a_fixed_rate(
    cli_env: Settings,  # noqa: F811
    market: None,
    merchant: MerchantKeys,
) -> None:
    rule = invoke("set-fixed", *PAIR, "--rate", "7.40")
    assert rule["adjust"] == "7.4" and rule["merchantId"] is None and rule["updatedBy"] == "cli"
    assert rate_of(invoke("show"), "USDT", "CNY")["rateSource"] == "fixed"
    own = ["--merchant-id", merchant.merchant_id]
    assert invoke("set-fixed", *PAIR, "--rate", "7.1", *own)["merchantId"] == merchant.merchant_id
    mine = rate_of(invoke("show", *own), "USDT", "CNY")
    assert (mine["rate"], mine["rateSource"]) == ("7.1", "fixed")
    assert rate_of(invoke("show"), "USDT", "CNY")["rate"] == "7.4"  # the gateway's

    assert invoke("unset-fixed", *PAIR) is None  # the rule had nothing else: removed
    assert rate_of(invoke("show"), "USDT", "CNY")["rate"] == "7.21"
    again = runner.invoke(app, ["rates", "unset-fixed", *PAIR])
    assert again.exit_code == 0 and "has no fixed rate here" in again.output


def test_set_rule_sets_only_the_given_fields_and_unset_rule_removes_it(
    cli_env: Settings,  # noqa: F811
    market: None,
    merchant: MerchantKeys,
) -> None:
    own = ["--merchant-id", merchant.merchant_id]
    rule = invoke(
        "set-rule", *PAIR, *own, "--sources", "okx, Kraken", "--spread", "1.50", "--step", "0.01"
    )
    assert (rule["sources"], rule["spreadPct"], rule["step"]) == (["okx", "kraken"], "1.5", "0.01")
    assert rule["method"] is None and rule["adjust"] is None  # inherited
    rule = invoke("set-rule", *PAIR, *own, "--method", "first", "--spread", "", "--max-age", "600")
    assert (rule["method"], rule["spreadPct"], rule["maxAgeSeconds"]) == ("first", None, 600)
    assert rule["sources"] == ["okx", "kraken"]
    mine = rate_of(invoke("show", *own), "USDT", "CNY")
    assert (mine["rate"], mine["rateSource"]) == ("7.23", "first(okx)")
    assert [r["merchantId"] for r in invoke("show", *own)["rules"]] == [merchant.merchant_id]

    assert invoke("unset-rule", *PAIR, *own) == {"removed": True}
    assert invoke("unset-rule", *PAIR, *own) == {"removed": False}
    assert rate_of(invoke("show", *own), "USDT", "CNY")["rateSource"] == (
        "median(kraken,coinbase,okx)"
    )


BAD_VALUES = [
    (["set-fixed", *PAIR, "--rate", "~0.98"], "invalid_rate_rule"),
    (["set-fixed", *PAIR, "--rate", "0"], "invalid_rate_rule"),
    (["set-fixed", "--symbol", "USDT", "--currency", "XAU", "--rate", "1"], "unsupported_currency"),
    (
        ["set-fixed", "--symbol", "USDT18", "--currency", "CNY", "--rate", "1"],
        "unsupported_currency",
    ),
    (["set-fixed", *PAIR, "--rate", "7.2", "--merchant-id", "mch_nope"], "not_found"),
    (["set-rule", *PAIR], "invalid_rate_rule"),
    (["set-rule", *PAIR, "--sources", "kraken,ecb"], "invalid_rate_rule"),
    (["set-rule", *PAIR, "--method", "mean"], "invalid_rate_rule"),
    (["set-rule", *PAIR, "--spread", "50"], "invalid_rate_rule"),
    (["set-rule", *PAIR, "--band", "0"], "invalid_rate_rule"),
    (["set-rule", *PAIR, "--max-age", "ten"], "invalid_rate_rule"),
    (["set-rule", *PAIR, "--max-age", "5"], "invalid_rate_rule"),
    (["set-rule", *PAIR, "--step", "0"], "invalid_rate_rule"),
    (["set-rule", *PAIR, "--adjust", "*2"], "invalid_rate_rule"),
    (["show", "--merchant-id", "mch_nope"], "not_found"),
]


def test_bad_values_exit_2_with_their_code_and_change_nothing(
    cli_env: Settings,  # noqa: F811
) -> None:
    for args, code in BAD_VALUES:
        assert f"error {code}:" in " ".join(refused(*args).split()), args
    assert invoke("show")["rules"] == []


async def audit_actions(gateway: GatewayContext) -> list[str]:
    async with session_scope(gateway.sessions) as session:
        rows = await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id))
        return [action for action in rows if action.startswith("rates.")]


async def test_every_change_is_audited(
    cli_env: Settings,  # noqa: F811
    gateway: GatewayContext,
) -> None:
    await asyncio.to_thread(invoke, "set-fixed", *PAIR, "--rate", "7.2")
    await asyncio.to_thread(invoke, "set-rule", *PAIR, "--spread", "1")
    await asyncio.to_thread(invoke, "unset-rule", *PAIR)
    assert await audit_actions(gateway) == [
        "rates.set_rule",
        "rates.set_rule",
        "rates.delete_rule",
    ]


class Kraken:
    name = "kraken"

    def __init__(self, error: SourceError | None = None) -> None:
        self.error = error

    async def fetch(self, client: httpx.AsyncClient) -> list[Quote]:
        if self.error is not None:
            raise self.error
        return [fresh("kraken", "USDT/USD", "1.0001")]


async def stored_quotes(gateway: GatewayContext) -> list[str]:
    async with session_scope(gateway.sessions) as session:
        return [row.mid for row in await session.scalars(select(RateQuote))]


async def test_fetch_once_stores_a_round_and_hands_the_lease_back(
    cli_env: Settings,  # noqa: F811
    gateway: GatewayContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    down = Kraken(SourceError("okx", SourceFault.HTTP_STATUS, "HTTP 502"))
    down.name = "okx"
    await asyncio.to_thread(fetch_rates, cli_env, [Kraken(), down], once=True, as_json=True)
    report = json.loads(capsys.readouterr().out)
    assert report == {
        "standby": False,
        "quotes": 1,
        "historyRows": 1,
        "failed": {"okx": "http_status: HTTP 502"},
        "fenced": False,
    }
    assert await stored_quotes(gateway) == ["1.0001"]
    # Handed back: another holder gets the lease at once.
    clock = FakeClock(SystemClock().now_ms())
    other = await acquire_or_renew(
        gateway.sessions, clock, name=LEASE_NAME, holder="x", ttl_ms=60_000
    )
    assert other is not None


async def test_fetch_once_does_nothing_while_another_process_fetches(
    cli_env: Settings,  # noqa: F811
    gateway: GatewayContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = SystemClock()
    held = await acquire_or_renew(
        gateway.sessions, clock, name=LEASE_NAME, holder="gateway", ttl_ms=600_000
    )
    assert held is not None
    with pytest.raises(typer.Exit) as exited:
        await asyncio.to_thread(fetch_rates, cli_env, [Kraken()], once=True, as_json=True)
    assert exited.value.exit_code == 1
    assert json.loads(capsys.readouterr().out)["standby"] is True
    assert await stored_quotes(gateway) == []
