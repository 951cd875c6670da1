"""The ECB's daily reference file: EUR against every currency we price in, dated its day."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from tests.rates.provider_server import ECB_RATES, ProviderServer

from stablegate.clock import FakeClock
from stablegate.rates.currencies import FIAT_MINOR_UNITS
from stablegate.rates.quote import Quote, SourceError, SourceFault
from stablegate.rates.sources.ecb import EcbSource

DAY_MS = 1_699_920_000_000  # 2023-11-14T00:00:00Z, the providers' day in these tests

HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" '
    b'xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">'
)


def envelope(cubes: bytes) -> bytes:
    return HEAD + b"<Cube>" + cubes + b"</Cube></gesmes:Envelope>"


async def test_quotes_the_euro_in_every_currency_at_the_file_date(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    provider_server.set_price("ecb", "EUR", "USD", "1.0852")
    quotes = await EcbSource(provider_server.url_for("ecb"), clock).fetch(http)

    assert len(quotes) == len(FIAT_MINOR_UNITS) - 1 == len(ECB_RATES)
    assert {quote.quote for quote in quotes} == set(FIAT_MINOR_UNITS) - {"EUR"}
    assert quotes[0] == Quote("ecb", "EUR", "USD", Decimal("1.0852"), None, None, DAY_MS)
    by_currency = {quote.quote: quote for quote in quotes}
    assert by_currency["CNY"].mid == Decimal("7.7748")
    assert by_currency["IDR"].mid == Decimal("17487.21")
    assert {quote.time_ms for quote in quotes} == {DAY_MS}


async def test_an_old_file_keeps_its_date(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    provider_server.set_fault("ecb", "stale")
    quotes = await EcbSource(provider_server.url_for("ecb"), clock).fetch(http)
    assert {quote.time_ms for quote in quotes} == {DAY_MS - 7 * 86_400_000}


async def test_other_currencies_are_ignored_and_a_bad_rate_dropped(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    body = envelope(
        b"<Cube time='2023-11-14'>"
        b"<Cube currency='USD' rate='1.0850'/><Cube currency='HRK' rate='7.5345'/>"
        b"<Cube currency='GBP' rate='-0.85'/><Cube currency='JPY'/></Cube>"
    )
    provider_server.set_fault("ecb", "raw", body=body)
    quotes = await EcbSource(provider_server.url_for("ecb"), clock).fetch(http)
    assert quotes == [Quote("ecb", "EUR", "USD", Decimal("1.0850"), None, None, DAY_MS)]


@pytest.mark.parametrize(
    "body",
    [
        # An external entity: never resolved, the DTD is refused before parsing.
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        + envelope(b"<Cube time='2023-11-14'><Cube currency='USD' rate='&x;'/></Cube>"),
        # Entity expansion ("billion laughs"), refused the same way.
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "1.0"><!ENTITY b "&a;&a;&a;">]>'
        + envelope(b"<Cube time='2023-11-14'><Cube currency='USD' rate='&b;'/></Cube>"),
        # UTF-16, where the check for a DTD would not see one.
        envelope(b"<Cube time='2023-11-14'><Cube currency='USD' rate='1.08'/></Cube>")
        .decode()
        .replace('encoding="UTF-8"', 'encoding="UTF-16"')
        .encode("utf-16"),
        # Two days, no day, a day that is not a date, a rate without its currency.
        envelope(b"<Cube time='2023-11-14'/><Cube time='2023-11-13'/>"),
        envelope(b"<Cube><Cube currency='USD' rate='1.08'/></Cube>"),
        envelope(b"<Cube time='14.11.2023'><Cube currency='USD' rate='1.08'/></Cube>"),
        envelope(b"<Cube time='2023-11-14'><Cube rate='1.08'/></Cube>"),
        # Another root element.
        b"<Envelope><Cube><Cube time='2023-11-14'/></Cube></Envelope>",
    ],
)
async def test_a_file_not_of_the_documented_shape_is_malformed(
    body: bytes, provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    provider_server.set_fault("ecb", "raw", body=body)
    with pytest.raises(SourceError) as caught:
        await EcbSource(provider_server.url_for("ecb"), clock).fetch(http)
    assert caught.value.fault == SourceFault.MALFORMED
