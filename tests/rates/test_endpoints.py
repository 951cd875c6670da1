"""The rate endpoints through the ASGI app on SQLite and PostgreSQL: the public rates (list,
one pair, refusals, cache, per-IP limit) and the merchant's own rules (set, read, effective
rate, delete, scoped to the merchant), with quotes stored by the real store."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from tests.api import test_orders_api
from tests.support import PAYOUT, MerchantKeys, Signer

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.merchants.service import create_merchant, find_api_key
from stablegate.models import AuditEntry
from stablegate.models.rate import GATEWAY_SCOPE
from stablegate.rates import store
from stablegate.rates.quote import Quote

RATES = "/api/v1/public/rates"
RULES = "/api/v1/rates/rules"
SET_RULE = "/api/v1/rates/setRule"
DELETE_RULE = "/api/v1/rates/deleteRule"
QUOTE = "/api/v1/rates/quote"

SECOND = 1000
DAY = 86_400 * SECOND


def quotes(now_ms: int) -> list[Quote]:
    """Two USD markets, one direct CNY market and the ECB's EUR crosses: USD->EUR is exactly
    1 / 1.25 = 0.8 and USD->CNY exactly 9 / 1.25 = 7.2, so every expected rate is exact."""
    return [
        Quote("kraken", "USDT", "USD", Decimal("1.0002"), Decimal("1.0001"), Decimal("1.0003"),
              now_ms - 10 * SECOND),
        Quote("coinbase", "USDT", "USD", Decimal("0.9998"), None, None, now_ms - 20 * SECOND),
        Quote("okx", "USDT", "CNY", Decimal("7.21"), Decimal("7.2"), Decimal("7.22"),
              now_ms - 5 * SECOND),
        Quote("ecb", "EUR", "USD", Decimal("1.25"), None, None, now_ms - DAY),
        Quote("ecb", "EUR", "CNY", Decimal("9"), None, None, now_ms - DAY),
    ]  # fmt: skip


async def store_quotes(gateway: GatewayContext, clock: FakeClock, stored: list[Quote]) -> None:
    async with session_scope(gateway.sessions) as session:
        await store.save_quotes(session, stored, clock.now_ms())


async def second_signer(gateway: GatewayContext, clock: FakeClock) -> Signer:
    async with session_scope(gateway.sessions) as session:
        created = await create_merchant(
            session,
            gateway.secret_box,
            clock,
            name="Other Shop",
            payout_address=PAYOUT,
            chain_ids=[31337],
        )
    keys = MerchantKeys(
        created.merchant_id, created.api_key, created.secret_key, created.webhook_secret
    )
    return Signer(keys, clock)


async def post(
    client: httpx.AsyncClient, signer: Signer, path: str, payload: Any
) -> httpx.Response:
    # A millisecond per request: the same request signed twice at one time is a replay.
    signer.clock.advance(0.001)
    return await test_orders_api.post(client, signer, path, payload)


async def get(
    client: httpx.AsyncClient, signer: Signer, path: str, query: str = ""
) -> httpx.Response:
    signer.clock.advance(0.001)
    return await test_orders_api.get(client, signer, path, query)


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


# -- public ---------------------------------------------------------------------------------


async def test_the_public_list_and_one_pair_carry_the_exact_rates(
    client: httpx.AsyncClient, gateway: GatewayContext, clock: FakeClock
) -> None:
    now = clock.now_ms()
    await store_quotes(gateway, clock, quotes(now))
    response = await client.get(RATES)
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "public, max-age=5"
    rates = {(r["symbol"], r["currency"]): r for r in response.json()["rates"]}
    # The test registry's only stablecoin is USDT (USDT18 is not one); only USD, EUR and CNY
    # have an ECB cross, so every other currency is left out.
    assert set(rates) == {("USDT", "USD"), ("USDT", "EUR"), ("USDT", "CNY")}
    cny = rates["USDT", "CNY"]
    # kraken 1.0002 x 7.2, coinbase 0.9998 x 7.2, okx 7.21 direct: the median is kraken's.
    assert Decimal(cny["rate"]) == Decimal("1.0002") * Decimal("7.2") == Decimal("7.20144")
    assert cny["rate"] == "7.20144"
    assert {s["source"]: Decimal(s["rate"]) for s in cny["sources"]} == {
        "kraken": Decimal("7.20144"),
        "coinbase": Decimal("7.19856"),
        "okx": Decimal("7.21"),
    }
    times = {s["source"]: s["time"] for s in cny["sources"]}
    assert times == {"kraken": now - DAY, "coinbase": now - DAY, "okx": now - 5 * SECOND}
    assert cny["time"] == now - DAY  # the oldest input: the ECB cross
    usd = rates["USDT", "USD"]
    assert usd["rate"] == "1"  # (1.0002 + 0.9998) / 2
    # In the order of the rule's sources (the settings': kraken, coinbase, okx, ...).
    assert [s["source"] for s in usd["sources"]] == ["kraken", "coinbase"]
    assert [s["source"] for s in cny["sources"]] == ["kraken", "coinbase", "okx"]
    # Bid and ask: the medians of the used sources' (coinbase quotes none): kraken's 1.0001
    # and 1.0003 x 7.2 with okx's 7.2 and 7.22.
    assert Decimal(cny["bid"]) == (Decimal("1.0001") * Decimal("7.2") + Decimal("7.2")) / 2
    assert Decimal(cny["ask"]) == (Decimal("1.0003") * Decimal("7.2") + Decimal("7.22")) / 2
    assert (cny["bid"], cny["ask"]) == ("7.20036", "7.21108")
    assert (usd["bid"], usd["ask"]) == ("1.0001", "1.0003")
    assert usd["time"] == now - 20 * SECOND
    eur = rates["USDT", "EUR"]
    assert Decimal(eur["rate"]) == Decimal("0.8") and eur["rate"] == "0.8"

    one = await client.get(f"{RATES}?symbol=USDT&currency=CNY")
    assert one.status_code == 200, one.text
    assert one.json() == cny
    assert one.headers["Cache-Control"] == "public, max-age=5"
    lower = await client.get(f"{RATES}?symbol=usdt&currency=cny")
    assert lower.json() == cny


async def test_a_pair_without_a_usable_rate_is_503_and_left_out_of_the_list(
    client: httpx.AsyncClient, gateway: GatewayContext, clock: FakeClock
) -> None:
    empty = await client.get(RATES)
    assert empty.status_code == 200 and empty.json() == {"rates": []}
    missing = await client.get(f"{RATES}?symbol=USDT&currency=JPY")
    assert missing.status_code == 503
    assert error_code(missing) == "rate_unavailable"
    assert missing.json()["error"]["message"]
    # Stale quotes are no rate either: the market quotes are older than the maximum age.
    await store_quotes(gateway, clock, quotes(clock.now_ms() - 3600 * SECOND))
    clock.advance(10)  # past the public cache
    gateway.rates.forget()  # and the service's own cache of the stored quotes
    stale = await client.get(f"{RATES}?symbol=USDT&currency=CNY")
    assert stale.status_code == 503 and error_code(stale) == "rate_unavailable"


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("symbol=USDT&currency=XYZ", "unsupported_currency"),
        ("symbol=USDT&currency=usd1", "unsupported_currency"),
        ("symbol=ETH&currency=USD", "unsupported_currency"),
        ("symbol=USDT18&currency=USD", "unsupported_currency"),  # in the registry, no market
        ("symbol=USDC&currency=USD", "unsupported_currency"),  # a stablecoin of no chain here
        ("symbol=%C3%9Fdt&currency=USD", "unsupported_currency"),
        ("symbol=USDT&currency=%EF%BC%B5SD", "unsupported_currency"),  # fullwidth U
        ("symbol=USDT", "invalid_request"),
        ("currency=USD", "invalid_request"),
        ("symbol=USDT&currency=" + "U" * 21, "invalid_request"),
        ("symbol=&currency=USD", "invalid_request"),
    ],
)
async def test_a_pair_the_gateway_does_not_price_is_400(
    client: httpx.AsyncClient, query: str, code: str
) -> None:
    response = await client.get(f"{RATES}?{query}")
    assert response.status_code == 400, response.text
    assert error_code(response) == code


async def test_answers_are_cached_a_few_seconds(
    client: httpx.AsyncClient, gateway: GatewayContext, clock: FakeClock
) -> None:
    await store_quotes(gateway, clock, quotes(clock.now_ms()))
    first = (await client.get(RATES)).json()
    first_pair = (await client.get(f"{RATES}?symbol=USDT&currency=EUR")).json()
    # The gateway's rule for the pair changes: within the period the same answers come back.
    async with session_scope(gateway.sessions) as session:
        await store.set_rule(
            session,
            clock,
            scope=GATEWAY_SCOPE,
            symbol="USDT",
            currency="EUR",
            changes={"adjust": "0.9"},
            actor="cli",
        )
    clock.advance(4)
    assert (await client.get(RATES)).json() == first
    assert (await client.get(f"{RATES}?symbol=USDT&currency=EUR")).json() == first_pair
    clock.advance(2)
    changed = (await client.get(f"{RATES}?symbol=USDT&currency=EUR")).json()
    assert changed["rate"] == "0.9"


async def test_the_public_rates_are_limited_per_ip_with_429_only(
    client: httpx.AsyncClient, gateway: GatewayContext
) -> None:
    limit = gateway.settings.public_per_minute
    codes = [
        (await client.get(f"{RATES}?symbol=USDT&currency=CNY")).status_code for _ in range(limit)
    ]
    assert set(codes) == {503}  # no rate stored: refused, but counted
    limited = await client.get(RATES)
    assert limited.status_code == 429 and error_code(limited) == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0


# -- the merchant's rules -------------------------------------------------------------------


async def set_rule(client: httpx.AsyncClient, signer: Signer, **fields: Any) -> httpx.Response:
    return await post(client, signer, SET_RULE, {"symbol": "USDT", "currency": "CNY", **fields})


async def test_a_merchant_sets_reads_uses_and_deletes_its_rule(
    client: httpx.AsyncClient, gateway: GatewayContext, clock: FakeClock, signer: Signer
) -> None:
    await store_quotes(gateway, clock, quotes(clock.now_ms()))
    market = await get(client, signer, QUOTE, "symbol=USDT&currency=CNY")
    assert market.status_code == 200, market.text
    assert market.json()["rate"] == "7.20144"
    assert market.json()["rateSource"] == "median(kraken,coinbase,okx)"
    assert (await get(client, signer, RULES)).json() == {"rules": []}

    response = await set_rule(client, signer, adjust="~0.98", spreadPct="1", step="0.01")
    assert response.status_code == 200, response.text
    rule = response.json()
    assert rule["symbol"] == "USDT" and rule["currency"] == "CNY"
    assert rule["rule"] == {
        "sources": None,
        "method": None,
        "spreadPct": "1",
        "adjust": "~0.98",
        "maxAgeSeconds": None,
        "bandPct": None,
        "step": "0.01",
    }
    assert rule["effective"]["sources"] == gateway.settings.rate_sources
    assert rule["effective"]["method"] == "median"
    assert rule["effective"]["spreadPct"] == "1" and rule["effective"]["adjust"] == "~0.98"
    assert rule["updateTime"] == clock.now_ms()
    assert (await get(client, signer, RULES)).json() == {"rules": [rule]}

    quoted = await get(client, signer, QUOTE, "symbol=USDT&currency=CNY")
    expected = Decimal("7.20144") * Decimal("0.98") * (1 - Decimal("1") / 100)
    assert Decimal(quoted.json()["rate"]) == expected
    assert quoted.json()["rateSource"] == "median(kraken,coinbase,okx) ~0.98 spread 1%"
    # The public rate is the gateway's, never a merchant's.
    assert (await client.get(f"{RATES}?symbol=USDT&currency=CNY")).json()["rate"] == "7.20144"

    async with session_scope(gateway.sessions) as session:
        key = await find_api_key(session, signer.keys.api_key)
        audit = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action.like("rates.%")))
        ).all()
    assert [(a.actor, a.action, a.subject) for a in audit] == [
        (f"api:{key.id}", "rates.set_rule", f"{signer.keys.merchant_id}:USDT/CNY")
    ]
    assert audit[0].details["after"]["spread_pct"] == "1"

    deleted = await post(client, signer, DELETE_RULE, {"symbol": "USDT", "currency": "CNY"})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"symbol": "USDT", "currency": "CNY", "deleted": True}
    again = await post(client, signer, DELETE_RULE, {"symbol": "usdt", "currency": "cny"})
    assert again.json()["deleted"] is False
    assert (await get(client, signer, RULES)).json() == {"rules": []}
    back = await get(client, signer, QUOTE, "symbol=USDT&currency=CNY")
    assert back.json()["rate"] == "7.20144"


async def test_a_merchant_never_sees_or_changes_another_merchants_rules(
    client: httpx.AsyncClient, gateway: GatewayContext, clock: FakeClock, signer: Signer
) -> None:
    await store_quotes(gateway, clock, quotes(clock.now_ms()))
    other = await second_signer(gateway, clock)
    assert (await set_rule(client, signer, adjust="7.4")).status_code == 200
    # The other merchant: no rules, the market rate, and its delete removes nothing of ours.
    assert (await get(client, other, RULES)).json() == {"rules": []}
    theirs = await get(client, other, QUOTE, "symbol=USDT&currency=CNY")
    assert theirs.json()["rate"] == "7.20144"
    gone = await post(client, other, DELETE_RULE, {"symbol": "USDT", "currency": "CNY"})
    assert gone.json()["deleted"] is False
    # Its own rule of the same pair is its own.
    assert (await set_rule(client, other, adjust="7.1")).status_code == 200
    ours = await get(client, signer, QUOTE, "symbol=USDT&currency=CNY")
    assert ours.json()["rate"] == "7.4" and ours.json()["rateSource"] == "fixed"
    assert (await get(client, other, QUOTE, "symbol=USDT&currency=CNY")).json()["rate"] == "7.1"
    rules = (await get(client, signer, RULES)).json()["rules"]
    assert [r["rule"]["adjust"] for r in rules] == ["7.4"]


async def test_rule_changes_need_a_signature_and_reads_a_valid_key(
    client: httpx.AsyncClient, signer: Signer
) -> None:
    body = json.dumps({"symbol": "USDT", "currency": "CNY", "adjust": "7.4"}).encode()
    key_only = {"BlockATM-API-Key": signer.keys.api_key, "Content-Type": "application/json"}
    for path in (SET_RULE, DELETE_RULE):
        unsigned = await client.post(path, content=body, headers=key_only)
        assert unsigned.status_code == 401 and error_code(unsigned) == "signature_required"
        forged = signer.headers("POST", path, body)
        forged["BlockATM-Signature-V2"] = "0" * 64
        refused = await client.post(path, content=body, headers=forged)
        assert refused.status_code == 401 and error_code(refused) == "invalid_signature"
    nobody = await client.get(RULES)
    assert nobody.status_code == 401 and error_code(nobody) == "missing_api_key"
    wrong = await client.get(
        f"{QUOTE}?symbol=USDT&currency=CNY", headers={"BlockATM-API-Key": "ak_nope"}
    )
    assert wrong.status_code == 401 and error_code(wrong) == "invalid_api_key"
    # Nothing was stored by the refused requests.
    assert (await get(client, signer, RULES)).json() == {"rules": []}


# Wrong for every rule field ("-0" is a valid addend, so it is tried on the others only).
NASTY: list[Any] = [
    10**400,
    -1,
    1.5,
    "1e3",
    "NaN",
    "Infinity",
    "٣",  # an Arabic-Indic digit
    "１",  # a fullwidth digit
    "7.4\u200b",
    "",
    ["7.4"],
    {"value": "7.4"},
    True,
    "9" * 200,
]


@pytest.mark.parametrize(
    "field", ["sources", "method", "spreadPct", "adjust", "maxAgeSeconds", "bandPct", "step"]
)
async def test_bad_rule_fields_are_400_and_store_nothing(
    client: httpx.AsyncClient, signer: Signer, field: str
) -> None:
    for value in NASTY + ([] if field == "adjust" else ["-0"]):
        response = await set_rule(client, signer, **{field: value})
        assert response.status_code == 400, (field, value, response.text)
        assert error_code(response) == "invalid_rate_rule", (field, value, response.text)
    assert (await get(client, signer, RULES)).json() == {"rules": []}


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"sources": ["nosuchsource"]}, "invalid_rate_rule"),
        ({"sources": ["kraken", "kraken"]}, "invalid_rate_rule"),
        ({"sources": []}, "invalid_rate_rule"),
        ({"method": "mean"}, "invalid_rate_rule"),
        ({"spreadPct": "-1"}, "invalid_rate_rule"),
        ({"spreadPct": "50"}, "invalid_rate_rule"),
        ({"adjust": "*2"}, "invalid_rate_rule"),
        ({"adjust": "~"}, "invalid_rate_rule"),
        ({"maxAgeSeconds": 5}, "invalid_rate_rule"),
        ({"bandPct": "0"}, "invalid_rate_rule"),
        ({"step": "0"}, "invalid_rate_rule"),
        ({"spread_pct": "1"}, "unknown_field"),
        ({"spreadPct": "1", "rate": "7"}, "unknown_field"),
        ({"currency": "XYZ"}, "unsupported_currency"),
        ({"symbol": "USDT18"}, "unsupported_currency"),
        ({"symbol": ["USDT"]}, "invalid_rate_rule"),
    ],
)
async def test_each_kind_of_bad_rule_has_its_code(
    client: httpx.AsyncClient, signer: Signer, fields: dict[str, Any], code: str
) -> None:
    response = await set_rule(client, signer, **fields)
    assert response.status_code == 400, response.text
    assert error_code(response) == code


async def test_bad_bodies_and_queries_are_400(client: httpx.AsyncClient, signer: Signer) -> None:
    assert error_code(await post(client, signer, SET_RULE, b"[1]")) == "invalid_body"
    assert error_code(await post(client, signer, SET_RULE, b'{"symbol": NaN}')) == "invalid_body"
    missing = await post(client, signer, SET_RULE, {"symbol": "USDT"})
    assert missing.status_code == 400 and error_code(missing) == "invalid_rate_rule"
    extra = await post(client, signer, DELETE_RULE, {"symbol": "USDT", "currency": "CNY", "x": 1})
    assert error_code(extra) == "unknown_field"
    for query in ("symbol=USDT", "symbol=USDT&currency=" + "x" * 30, "symbol=USDT&currency=XYZ"):
        response = await get(client, signer, QUOTE, query)
        assert response.status_code == 400, (query, response.text)


async def test_the_openapi_schema_lists_the_rate_endpoints(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    paths = schema["paths"]
    assert set(paths[RATES]) == {"get"}
    assert {"400", "429", "503"} <= set(paths[RATES]["get"]["responses"])
    assert set(paths[RULES]) == {"get"} and set(paths[QUOTE]) == {"get"}
    assert set(paths[SET_RULE]) == {"post"} and set(paths[DELETE_RULE]) == {"post"}
    body = paths[SET_RULE]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"symbol", "currency", "spreadPct", "maxAgeSeconds"} <= set(body["properties"])
    assert "RateOut" in schema["components"]["schemas"]
