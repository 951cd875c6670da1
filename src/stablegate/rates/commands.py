"""``stablegate rates ...``: every pair's rate and rule, fixed rates, rules, and the fetcher,
mounted by :mod:`stablegate.cli`.

Rules are the gateway's unless ``--merchant-id`` names a merchant: then they are that
merchant's own, overriding the gateway's field by field. Every change is audited (actor
``cli``); a bad value is ``invalid_rate_rule``, an unknown pair ``unsupported_currency``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import SystemClock
from stablegate.config import Settings
from stablegate.console import (
    JsonFlag,
    error_console,
    fail,
    print_json,
    print_record,
    print_rows,
    stop_on_signals,
    with_session,
)
from stablegate.db.engine import make_engine, make_sessionmaker
from stablegate.errors import GatewayError, InvalidRequest, RateUnavailable
from stablegate.merchants.service import get_merchant
from stablegate.migrations import upgrade
from stablegate.models.rate import GATEWAY_SCOPE, RateRule
from stablegate.rates import store
from stablegate.rates.currencies import FIAT_MINOR_UNITS, STABLECOINS
from stablegate.rates.engine import Limits, QuoteBook, price_pair
from stablegate.rates.fetcher import FetchReport, RateFetcher
from stablegate.rates.pricing import decimal_text
from stablegate.rates.rules import (
    AdjustKind,
    checked_field,
    effective_rule,
    parse_adjust,
)
from stablegate.rates.service import check_pair
from stablegate.rates.sources import RateSource, build_sources

rates_app = typer.Typer(help="Exchange rates: each pair's rate and rule, fixed rates, fetching.")

ACTOR = "cli"
SymbolOption = Annotated[str, typer.Option(help="Stablecoin: USDT, USDC or DAI.")]
CurrencyOption = Annotated[str, typer.Option(help="ISO 4217 currency, e.g. CNY.")]
MerchantOption = Annotated[
    str | None, typer.Option(help="A merchant's own rule (mch_...); default: the gateway's.")
]
# A set-rule value of "" clears that field: it inherits again.
FieldOption = Annotated[str | None, typer.Option(show_default=False)]


def _checked_or_fail(check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Values checked before any database work; a bad one exits 2 with its code."""
    try:
        return check()
    except GatewayError as exc:
        raise fail(f"{exc.code}: {exc.message}") from None


def _pair(symbol: str, currency: str) -> tuple[str, str]:
    symbol, currency = symbol.strip().upper(), currency.strip().upper()
    check_pair(symbol, currency)
    return symbol, currency


async def _scope(session: AsyncSession, merchant_id: str | None) -> str:
    if merchant_id is None:
        return GATEWAY_SCOPE
    await get_merchant(session, merchant_id)  # not_found for a mistyped id
    return merchant_id


def rule_view(row: RateRule) -> dict[str, Any]:
    """A stored rule as the CLI prints it (``-``/null: inherited)."""
    return {
        "merchantId": row.scope or None,
        "symbol": row.symbol,
        "currency": row.currency,
        "sources": row.sources,
        "method": row.method,
        "spreadPct": row.spread_pct,
        "adjust": row.adjust,
        "maxAgeSeconds": row.max_age_s,
        "bandPct": row.band_pct,
        "step": row.step,
        "updateTime": row.updated_at_ms,
        "updatedBy": row.updated_by,
    }


async def rate_rows(
    session: AsyncSession, settings: Settings, merchant_id: str | None, now_ms: int
) -> list[dict[str, Any]]:
    """Every pair with a rate, or with a rule of its own (then with why it has no rate)."""
    book = QuoteBook(await store.latest_quotes(session))
    limits = Limits(fiat_max_age_s=settings.fiat_max_age_s, sanity_pct=settings.rate_sanity_pct)
    gateway = {(r.symbol, r.currency): r for r in await store.rules_of(session, GATEWAY_SCOPE)}
    own: dict[tuple[str, str], RateRule] = {}
    if merchant_id is not None:
        own = {(r.symbol, r.currency): r for r in await store.rules_of(session, merchant_id)}
    rows: list[dict[str, Any]] = []
    for symbol in STABLECOINS:
        for currency in FIAT_MINOR_UNITS:
            key = (symbol, currency)
            rule = effective_rule(settings, symbol, currency, gateway.get(key), own.get(key))
            try:
                pair = price_pair(book, rule, now_ms, limits)
            except RateUnavailable as exc:
                if key in gateway or key in own:
                    rows.append({"symbol": symbol, "currency": currency, "refused": exc.message})
                continue
            rows.append(
                {
                    "symbol": symbol,
                    "currency": currency,
                    "rate": decimal_text(pair.rate),
                    "bid": None if pair.bid is None else decimal_text(pair.bid),
                    "ask": None if pair.ask is None else decimal_text(pair.ask),
                    "rateSource": pair.label,
                    "rateTime": pair.time_ms,
                    "ageSeconds": max(0, now_ms - pair.time_ms) // 1000,
                    "sources": [
                        f"{price.source} {decimal_text(price.rate)}" for price in pair.sources
                    ],
                }
            )
    return rows


@rates_app.command("show")
def show(merchant_id: MerchantOption = None, as_json: JsonFlag = False) -> None:
    """Every pair's rate now (with its sources and age) and the stored rules."""

    async def work(session: AsyncSession, settings: Settings) -> dict[str, Any]:
        scope = await _scope(session, merchant_id)
        rules = await store.rules_of(session, GATEWAY_SCOPE)
        if scope != GATEWAY_SCOPE:
            rules += await store.rules_of(session, scope)
        rates = await rate_rows(session, settings, merchant_id, SystemClock().now_ms())
        return {"rates": rates, "rules": [rule_view(row) for row in rules]}

    shown = with_session(work)
    if as_json:
        print_json(shown)
        return
    columns = ["symbol", "currency", "rate", "rateSource", "ageSeconds", "sources", "refused"]
    print_rows(shown["rates"], columns, False)
    typer.echo("")
    typer.echo("rules")
    rule_columns = ["merchantId", "symbol", "currency", "sources", "method", "spreadPct"]
    rule_columns += ["adjust", "maxAgeSeconds", "bandPct", "step", "updateTime"]
    print_rows(shown["rules"], rule_columns, False)


def _set(
    symbol: str, currency: str, merchant_id: str | None, changes: dict[str, Any]
) -> dict[str, Any] | None:
    async def work(session: AsyncSession, _settings: Settings) -> dict[str, Any] | None:
        pair = _pair(symbol, currency)
        scope = await _scope(session, merchant_id)
        row = await store.set_rule(
            session,
            SystemClock(),
            scope=scope,
            symbol=pair[0],
            currency=pair[1],
            changes=changes,
            actor=ACTOR,
        )
        return None if row is None else rule_view(row)

    return with_session(work)


def _print_rule(view: dict[str, Any] | None, symbol: str, currency: str, as_json: bool) -> None:
    if view is not None:
        print_record(view, as_json)
    elif as_json:
        print_json(None)
    else:
        error_console.print(
            f"{symbol.upper()}/{currency.upper()} has no rule of its own now: it inherits"
        )


@rates_app.command("set-fixed")
def set_fixed(
    symbol: SymbolOption,
    currency: CurrencyOption,
    rate: Annotated[str, typer.Option(help="Fiat per token, e.g. 7.2 (1 USDT = 7.2 CNY).")],
    merchant_id: MerchantOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Price a pair at a fixed rate: no source needed (the spread still applies). Audited."""

    def fixed() -> dict[str, Any]:
        adjustment = parse_adjust(rate)
        if adjustment.kind != AdjustKind.FIXED:
            raise InvalidRequest(
                f"--rate {rate!r} is not a plain rate; set-rule --adjust takes the ~ and +/- forms",
                code="invalid_rate_rule",
            )
        return {"adjust": adjustment.text}

    view = _set(symbol, currency, merchant_id, _checked_or_fail(fixed))
    _print_rule(view, symbol, currency, as_json)


@rates_app.command("unset-fixed")
def unset_fixed(
    symbol: SymbolOption,
    currency: CurrencyOption,
    merchant_id: MerchantOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Price a pair from the market again (the rule's other fields stay). Audited."""

    async def work(session: AsyncSession, _settings: Settings) -> bool:
        pair = _pair(symbol, currency)
        scope = await _scope(session, merchant_id)
        row = await session.get(RateRule, (scope, *pair))
        if row is None or row.adjust is None:
            return False
        return parse_adjust(row.adjust).kind == AdjustKind.FIXED

    if not with_session(work):
        error_console.print(f"{symbol.upper()}/{currency.upper()} has no fixed rate here")
        if as_json:
            print_json(None)
        return
    _print_rule(_set(symbol, currency, merchant_id, {"adjust": None}), symbol, currency, as_json)


def rule_changes(
    *,
    sources: str | None,
    method: str | None,
    spread: str | None,
    adjust: str | None,
    max_age: str | None,
    band: str | None,
    step: str | None,
) -> dict[str, Any]:
    """The given set-rule options checked and in their stored form ("" clears a field)."""
    given = {
        "sources": sources,
        "method": method,
        "spread_pct": spread,
        "adjust": adjust,
        "max_age_s": max_age,
        "band_pct": band,
        "step": step,
    }
    changes: dict[str, Any] = {}
    for name, text in given.items():
        if text is not None:
            changes[name] = None if text.strip() == "" else _checked(name, text.strip())
    if not changes:
        raise InvalidRequest("give at least one field to set", code="invalid_rate_rule")
    return changes


def _checked(name: str, text: str) -> Any:
    if name == "sources":
        return checked_field(name, [part.strip().lower() for part in text.split(",")])
    if name == "max_age_s":
        if not text.isdigit():
            raise InvalidRequest("max age must be whole seconds", code="invalid_rate_rule")
        return checked_field(name, int(text))
    return checked_field(name, text)


@rates_app.command("set-rule")
def set_rule(
    symbol: SymbolOption,
    currency: CurrencyOption,
    sources: Annotated[
        str | None, typer.Option(help="Comma-separated, in order: e.g. kraken,coinbase,okx.")
    ] = None,
    method: Annotated[str | None, typer.Option(help="median, or first that answers.")] = None,
    spread: Annotated[str | None, typer.Option(help="Percent taken off the rate.")] = None,
    adjust: Annotated[
        str | None, typer.Option(help="7.4 fixed, ~0.98 multiply, +0.3 / -0.3 add.")
    ] = None,
    max_age: Annotated[str | None, typer.Option(help="Oldest usable quote, seconds.")] = None,
    band: Annotated[str | None, typer.Option(help="Widest disagreement, percent.")] = None,
    step: Annotated[str | None, typer.Option(help="Round token amounts up to this.")] = None,
    merchant_id: MerchantOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Set fields of a pair's rule; the others keep inheriting ('' clears one). Audited."""
    changes = _checked_or_fail(
        lambda: rule_changes(
            sources=sources,
            method=method,
            spread=spread,
            adjust=adjust,
            max_age=max_age,
            band=band,
            step=step,
        )
    )
    fetched = Settings().rate_sources
    not_fetched = [name for name in changes.get("sources") or [] if name not in fetched]
    if not_fetched:
        error_console.print(
            f"[yellow]warning[/yellow] this gateway does not fetch {', '.join(not_fetched)}"
            " (STABLEGATE_RATE_SOURCES): the rule cannot use it until it does"
        )
    _print_rule(_set(symbol, currency, merchant_id, changes), symbol, currency, as_json)


@rates_app.command("unset-rule")
def unset_rule(
    symbol: SymbolOption,
    currency: CurrencyOption,
    merchant_id: MerchantOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Remove a pair's rule: every field inherits again. Audited."""

    async def work(session: AsyncSession, _settings: Settings) -> bool:
        pair = _pair(symbol, currency)
        scope = await _scope(session, merchant_id)
        return await store.delete_rule(
            session, SystemClock(), scope=scope, symbol=pair[0], currency=pair[1], actor=ACTOR
        )

    removed = with_session(work)
    if as_json:
        print_json({"removed": removed})
    elif not removed:
        error_console.print(f"{symbol.upper()}/{currency.upper()} had no rule here")
    else:
        error_console.print(f"{symbol.upper()}/{currency.upper()} rule removed: it inherits")


def report_view(report: FetchReport) -> dict[str, Any]:
    return {
        "standby": report.standby,
        "quotes": report.quotes,
        "historyRows": report.history_rows,
        "failed": report.failed,
        "fenced": report.fenced,
    }


def fetch_rates(
    settings: Settings, sources: Sequence[RateSource], *, once: bool, as_json: bool
) -> None:
    """``stablegate rates fetch``: the fetcher until SIGINT/SIGTERM, or one round with
    ``once`` (then the lease is handed back). Exit 1 when a single round fetched nothing
    because another process holds the lease."""

    async def main() -> FetchReport | None:
        engine = make_engine(settings.effective_database_url)
        try:
            if settings.is_embedded:
                await upgrade(engine)
            fetcher = RateFetcher(make_sessionmaker(engine), SystemClock(), settings, sources)
            if not once:
                await fetcher.run_forever(stop_on_signals())
                return None
            try:
                return await fetcher.fetch_once()
            finally:
                await fetcher.release()
        finally:
            await engine.dispose()

    report = asyncio.run(main())
    if report is None:
        return
    print_record(report_view(report), as_json)
    if report.standby:
        error_console.print("another process holds the rates lease and fetches: nothing done")
        raise typer.Exit(1)


@rates_app.command("fetch")
def fetch(
    once: Annotated[
        bool, typer.Option("--once", help="One round, then hand the lease back and stop.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Fetch rates from every configured source into the database (one fetcher per gateway:
    others wait on the lease). `stablegate run` does this itself."""
    settings = Settings()
    try:
        sources = build_sources(settings)
    except ValueError as exc:
        raise fail(str(exc)) from None
    fetch_rates(settings, sources, once=once, as_json=as_json)
