"""The rate gauges on /metrics, read from the stored quotes at scrape time."""

from __future__ import annotations

from decimal import Decimal

import httpx
from tests.support import NOW_MS

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.rates import store
from stablegate.rates.quote import Quote


def quote(source: str, pair: str, mid: str, age_s: float) -> Quote:
    base, currency = pair.split("/")
    return Quote(source, base, currency, Decimal(mid), None, None, NOW_MS - int(age_s * 1000))


async def scrape(client: httpx.AsyncClient) -> list[str]:
    response = await client.get("/metrics", headers={"Authorization": "Bearer metrics-token"})
    assert response.status_code == 200
    return [line for line in response.text.splitlines() if line.startswith("stablegate_")]


async def test_rate_ages_and_peg_deviation_are_read_from_the_stored_quotes(
    client: httpx.AsyncClient, gateway: GatewayContext, clock: FakeClock
) -> None:
    async with session_scope(gateway.sessions) as session:
        await store.save_quotes(
            session,
            [
                quote("kraken", "USDT/USD", "0.97", 12.5),
                quote("okx", "USDT/USD", "0.98", 3),
                quote("ecb", "EUR/CNY", "7.776", 7200),
                quote("kraken", "USDC/USD", "1.0001", 400),  # too old for the peg
            ],
            NOW_MS,
        )
    lines = await scrape(client)
    ages = sorted(line for line in lines if line.startswith("stablegate_rate_age_seconds"))
    assert ages == [
        'stablegate_rate_age_seconds{base="EUR",quote="CNY",source="ecb"} 7200.0',
        'stablegate_rate_age_seconds{base="USDC",quote="USD",source="kraken"} 400.0',
        'stablegate_rate_age_seconds{base="USDT",quote="USD",source="kraken"} 12.5',
        'stablegate_rate_age_seconds{base="USDT",quote="USD",source="okx"} 3.0',
    ]
    pegs = [line for line in lines if line.startswith("stablegate_stablecoin_peg")]
    # The median of 0.97 and 0.98 is 0.975: 2.5 % under the peg.
    assert pegs == ['stablegate_stablecoin_peg_deviation_percent{symbol="USDT"} -2.5']
    clock.advance(300)  # every market quote now too old for the peg; ages keep growing
    lines = await scrape(client)
    assert 'stablegate_rate_age_seconds{base="USDT",quote="USD",source="okx"} 303.0' in lines
    assert not [line for line in lines if line.startswith("stablegate_stablecoin_peg")]
