"""The ECB's euro reference rates (``GET /stats/eurofxref/eurofxref-daily.xml``): the fiat
reference every cross through USD is computed from.

The file is a ``gesmes:Envelope`` holding ``<Cube><Cube time="2024-06-28"><Cube currency="USD"
rate="1.0705"/>...</Cube></Cube>``: one working day's rates, each the price of one euro in that
currency. Quotes are ``EUR``/X for every currency we price in; their time is the file's date
(midnight UTC, earlier than the real afternoon publication, so never fresher than it is).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from xml.etree import ElementTree

import httpx

from stablegate.clock import Clock
from stablegate.rates.currencies import FIAT_MINOR_UNITS
from stablegate.rates.quote import Quote
from stablegate.rates.sources.answers import (
    base_url,
    get_body,
    malformed,
    read_price,
    require_quotes,
)

PATH = "/stats/eurofxref/eurofxref-daily.xml"
_GESMES = "{http://www.gesmes.org/xml/2002-08-01}"
_REF = "{http://www.ecb.int/vocabulary/2002-08-01/eurofxref}"


class EcbSource:
    name = "ecb"

    def __init__(self, url: str, clock: Clock) -> None:
        self.url = base_url(self.name, url) + PATH
        self.clock = clock

    async def fetch(self, client: httpx.AsyncClient) -> list[Quote]:
        body = await get_body(client, self.name, self.url, accept="application/xml, text/xml")
        received_ms = self.clock.now_ms()
        day, rates = read_daily_file(self.name, body)
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        time_ms = min(int(midnight.timestamp()) * 1000, received_ms)
        quotes = []
        for currency, rate in rates:
            if currency not in FIAT_MINOR_UNITS or currency == "EUR":
                continue
            price = read_price(self.name, rate, f"EUR/{currency}")
            if price is not None:
                quotes.append(Quote(self.name, "EUR", currency, price, None, None, time_ms))
        return require_quotes(self.name, quotes)


def read_daily_file(source: str, body: bytes) -> tuple[date, list[tuple[str, str | None]]]:
    """The day of the file and its (currency, rate text) pairs.

    ElementTree (expat) resolves no external entities and fetches nothing, and expat bounds
    entity expansion. A document type declaration is refused outright all the same (the ECB's
    file never has one); so that the byte check below sees what the parser sees, the body is
    read as UTF-8 whatever it declares, and a NUL byte (UTF-16 or UTF-32) is refused.
    """
    if b"\0" in body or b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise malformed(source, "not a plain UTF-8 XML file without a DTD")
    try:
        # S314: the checks above leave expat nothing risky to do.
        parser = ElementTree.XMLParser(encoding="utf-8")  # noqa: S314
        root = ElementTree.fromstring(body, parser=parser)  # noqa: S314
    except ElementTree.ParseError as exc:
        raise malformed(source, f"not XML: {exc}") from None
    if root.tag != f"{_GESMES}Envelope":
        raise malformed(source, f"root element {root.tag[:80]} is not gesmes:Envelope")
    days = root.findall(f"{_REF}Cube/{_REF}Cube[@time]")
    if len(days) != 1:
        raise malformed(source, f"{len(days)} dated Cube elements, expected one")
    try:
        day = date.fromisoformat(days[0].get("time", ""))
    except ValueError:
        raise malformed(source, "the Cube's time is not a date") from None
    rates = []
    for cube in days[0].findall(f"{_REF}Cube"):
        currency = cube.get("currency")
        if currency is None:
            raise malformed(source, "a rate Cube has no currency")
        rates.append((currency, cube.get("rate")))
    return day, rates
