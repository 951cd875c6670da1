"""A local HTTP server answering like the rate providers, with faults switched on at run time.

One server answers for all six providers, each under its own path prefix:
``server.url_for("kraken")`` is ``http://127.0.0.1:<port>/kraken``, so the Kraken adapter built
with it asks ``/kraken/0/public/Ticker?pair=...``, as it would ask a proxy. ``server.settings()``
gives every ``rate_*_url`` setting pointing at it. The answers have the shapes of the real
APIs (written from each provider's documentation), built from a table of prices that starts
with realistic defaults (:data:`DEFAULT_PRICES`) and that tests change::

    from tests.rates.provider_server import ProviderServer

    with ProviderServer() as server:  # in tests/rates/sources: the ``provider_server`` fixture
        server.time_ms = clock.now_ms()  # the providers' clock (default: the wall clock)
        server.set_price("kraken", "USDT", "USD", "0.9998")  # bid = ask = 0.9998
        server.set_price("kraken", "USDT", "EUR", "0.92", bid="0.9199", ask="0.9201")
        server.set_fault("okx", "status_503")  # every OKX request answers 503
        server.set_fault("coinbase", "timeout", match="currency=DAI")  # one request only
        settings = Settings(**server.settings(), rate_sources=["kraken", "okx", "coinbase"])
        sources = build_sources(settings, clock)
        ...
        server.clear_fault("okx")

Prices are keyed as each provider lists them (text, sent as given):

- ``binance``: its market, base then quote: ``("EUR", "USDT")`` is EURUSDT (USDT per euro),
  ``("USDT", "TRY")`` is USDTTRY. A symbol without a price is unknown: asking for it fails
  the whole request with HTTP 400 ``{"code": -1121}``, as on Binance.
- ``okx``: ``("USDT", "USD")`` is the index USDT-USD; ``("USD", "CNY")`` the exchange-rate's
  ``usdCny``. Index ``ts`` is the providers' clock.
- ``kraken``: ``(coin, fiat)``, answered under Kraken's name (USDT/USD as ``USDTZUSD``); an
  unknown pair fails the whole request with ``EQuery:Unknown asset pair``.
- ``coinbase``: ``(coin, currency)``: ``rates[currency]`` of ``?currency=coin``.
- ``coingecko``: ``(coin, fiat)``, served by coin id (tether, usd-coin, dai) as JSON numbers,
  with ``last_updated_at`` in seconds.
- ``ecb``: ``("EUR", currency)``; the file's date is the providers' clock's UTC day.

:meth:`ProviderServer.remove_price` delists a pair. Faults (:meth:`ProviderServer.set_fault`,
one per provider, for every request or only those whose path and query contain ``match``):

- ``timeout``: holds the request ``hang_s`` seconds (default 30) without answering;
- ``status_500``, ``status_503``: that status, with a short text body;
- ``refused`` (okx, kraken): HTTP 200 carrying the provider's own error (OKX ``code`` 50001,
  Kraken ``EService:Unavailable``);
- ``malformed``: the real answer cut in half; ``wrong_shape``: valid JSON or XML of another
  shape; ``raw``: the given ``body`` (bytes) and ``status`` as they are;
- ``zero``, ``negative``, ``non_numeric``: every price of the answer ``0``, negated, ``n/a``;
- ``stale``: the providers' timestamps ``stale_s`` seconds (default 3600) older (OKX ``ts``,
  CoinGecko ``last_updated_at``) and the ECB's file a week old; providers without a time
  (Binance, Kraken, Coinbase) are unchanged.

``requests`` lists every request target received, in order (``requests_to(provider)``: one
provider's, without its prefix). The server runs on its own
thread and event loop, so it answers while the test's loop awaits; a held (``timeout``)
request is dropped when the server stops.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

PROVIDERS = ("binance", "okx", "kraken", "coinbase", "coingecko", "ecb")
FAULTS = (
    "timeout",
    "status_500",
    "status_503",
    "refused",
    "malformed",
    "wrong_shape",
    "raw",
    "zero",
    "negative",
    "non_numeric",
    "stale",
)
PATHS = {
    "binance": ("/api/v3/ticker/bookTicker",),
    "okx": ("/api/v5/market/index-tickers", "/api/v5/market/exchange-rate"),
    "kraken": ("/0/public/Ticker",),
    "coinbase": ("/v2/exchange-rates",),
    "coingecko": ("/api/v3/simple/price",),
    "ecb": ("/stats/eurofxref/eurofxref-daily.xml",),
}
COINGECKO_IDS = {"USDT": "tether", "USDC": "usd-coin", "DAI": "dai"}
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}
_JSON_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")

# The ECB's reference currencies and plausible rates (euro in each).
ECB_RATES = {
    "USD": "1.0850", "JPY": "163.52", "BGN": "1.9558", "CZK": "25.030", "DKK": "7.4590",
    "GBP": "0.85210", "HUF": "395.10", "PLN": "4.3090", "RON": "4.9773", "SEK": "11.3595",
    "CHF": "0.9634", "ISK": "148.90", "NOK": "11.3965", "TRY": "35.1868", "AUD": "1.6079",
    "BRL": "5.8915", "CAD": "1.4670", "CNY": "7.7748", "HKD": "8.3594", "IDR": "17487.21",
    "ILS": "4.0200", "INR": "89.2495", "KRW": "1474.86", "MXN": "19.5654", "MYR": "5.0501",
    "NZD": "1.7601", "PHP": "62.560", "SGD": "1.4513", "THB": "39.319", "ZAR": "19.4970",
}  # fmt: skip


@dataclass(frozen=True)
class Price:
    price: str
    bid: str | None = None  # None: the price itself
    ask: str | None = None


def _defaults() -> dict[str, dict[tuple[str, str], Price]]:
    book = Price
    return {
        "binance": {
            ("EUR", "USDT"): book("1.0850", "1.0849", "1.0851"),
            ("EUR", "USDC"): book("1.0852", "1.0851", "1.0853"),
            ("USDT", "TRY"): book("34.20", "34.19", "34.21"),
            ("USDT", "BRL"): book("5.600", "5.599", "5.601"),
            ("USDT", "PLN"): book("3.970", "3.969", "3.971"),
            ("USDT", "RON"): book("4.590", "4.589", "4.591"),
            ("USDT", "ZAR"): book("17.97", "17.96", "17.98"),
            ("USDT", "MXN"): book("18.03", "18.02", "18.04"),
            ("USDT", "CZK"): book("23.07", "23.06", "23.08"),
            ("USDT", "JPY"): book("150.71", "150.70", "150.72"),
            ("BTC", "USDT"): book("67000.01", "67000.00", "67000.02"),
        },
        "okx": {
            ("USDT", "USD"): book("0.99985"),
            ("USDC", "USD"): book("0.99992"),
            ("DAI", "USD"): book("0.99970"),
            ("BTC", "USD"): book("67012.3"),
            ("USD", "CNY"): book("7.1650"),
        },
        "kraken": {
            ("USDT", "USD"): book("0.99990", "0.99989", "0.99991"),
            ("USDT", "EUR"): book("0.92150", "0.92140", "0.92160"),
            ("USDT", "GBP"): book("0.78560", "0.78550", "0.78570"),
            ("USDT", "CAD"): book("1.35210", "1.35200", "1.35220"),
            ("USDT", "AUD"): book("1.48190", "1.48180", "1.48200"),
            ("USDT", "CHF"): book("0.88790", "0.88780", "0.88800"),
            ("USDT", "JPY"): book("150.705", "150.700", "150.710"),
            ("USDC", "USD"): book("0.99995", "0.99994", "0.99996"),
            ("USDC", "EUR"): book("0.92160", "0.92150", "0.92170"),
            ("USDC", "GBP"): book("0.78570", "0.78560", "0.78580"),
            ("DAI", "USD"): book("0.99970", "0.99960", "0.99980"),
            ("DAI", "EUR"): book("0.92130", "0.92120", "0.92140"),
        },
        "coinbase": {
            **{
                (coin, fiat): book(price)
                for coin, prices in {
                    "USDT": {"USD": "1.0001", "EUR": "0.9217", "CNY": "7.1689", "JPY": "150.74"},
                    "USDC": {"USD": "1", "EUR": "0.9216", "CNY": "7.1680", "JPY": "150.73"},
                    "DAI": {"USD": "0.9998", "EUR": "0.9214", "CNY": "7.1665", "JPY": "150.70"},
                }.items()
                for fiat, price in prices.items()
            },
            ("USDT", "BTC"): book("0.0000149"),  # not fiat: left out by the adapter
        },
        "coingecko": {
            (coin, fiat): book(price)
            for coin, prices in {
                "USDT": {"USD": "1.0002", "EUR": "0.9218", "CNY": "7.1663", "JPY": "151"},
                "USDC": {"USD": "0.999912", "EUR": "0.92154", "CNY": "7.1651", "JPY": "150.7"},
                "DAI": {"USD": "0.99987", "EUR": "0.92149", "CNY": "7.1642", "JPY": "150.69"},
            }.items()
            for fiat, price in prices.items()
        },
        "ecb": {("EUR", currency): book(rate) for currency, rate in ECB_RATES.items()},
    }


DEFAULT_PRICES = _defaults()


@dataclass
class Fault:
    name: str
    match: str | None = None
    hang_s: float = 30.0
    stale_s: int = 3600
    body: bytes = b""
    status: int = 200


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    hang: float | None = None


@dataclass
class _Answer:
    """Renders one provider's answer under a fault: prices and timestamps pass through here."""

    fault: Fault | None
    now_ms: int

    def price(self, text: str) -> str:
        name = self.fault.name if self.fault else None
        if name == "zero":
            return "0"
        if name == "negative":
            return text[1:] if text.startswith("-") else "-" + text
        if name == "non_numeric":
            return "n/a"
        return text

    def time_ms(self) -> int:
        if self.fault is not None and self.fault.name == "stale":
            return self.now_ms - self.fault.stale_s * 1000
        return self.now_ms


class ProviderServer:
    def __init__(self) -> None:
        self.prices: dict[str, dict[tuple[str, str], Price]] = {
            provider: dict(table) for provider, table in DEFAULT_PRICES.items()
        }
        self.faults: dict[str, Fault] = {}
        self.time_ms: int | None = None  # the providers' clock; None: the wall clock
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self.port: int | None = None

    # -- what tests use -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the provider server is not running")
        return f"http://127.0.0.1:{self.port}"

    def url_for(self, provider: str) -> str:
        _check_provider(provider)
        return f"{self.url}/{provider}"

    def settings(self) -> dict[str, str]:
        """``rate_<provider>_url`` for every provider, for ``Settings(**server.settings())``."""
        return {f"rate_{provider}_url": self.url_for(provider) for provider in PROVIDERS}

    def set_price(
        self,
        provider: str,
        base: str,
        quote: str,
        price: str,
        *,
        bid: str | None = None,
        ask: str | None = None,
    ) -> None:
        _check_provider(provider)
        with self._lock:
            self.prices[provider][(base, quote)] = Price(price, bid, ask)

    def remove_price(self, provider: str, base: str, quote: str) -> None:
        """The provider no longer lists the pair."""
        _check_provider(provider)
        with self._lock:
            self.prices[provider].pop((base, quote), None)

    def set_fault(
        self, provider: str, name: str, *, match: str | None = None, **options: Any
    ) -> None:
        """From the next request on, ``provider`` (only requests whose target contains
        ``match``, when given) answers with the fault ``name`` (see the module docstring)."""
        _check_provider(provider)
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
        if name == "refused" and provider not in ("okx", "kraken"):
            raise ValueError("only okx and kraken refuse inside a 200 answer")
        with self._lock:
            self.faults[provider] = Fault(name, match, **options)

    def clear_fault(self, provider: str) -> None:
        with self._lock:
            self.faults.pop(provider, None)

    def requests_to(self, provider: str) -> list[str]:
        """The request targets ``provider`` received, without the provider prefix."""
        prefix = f"/{provider}"
        with self._lock:
            return [
                target[len(prefix) :] for target in self.requests if target.startswith(prefix + "/")
            ]

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the provider server is already running")
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(ready, failure), name="provider-server", daemon=True
        )
        self._thread.start()
        if not ready.wait(10) or failure:
            raise RuntimeError(f"the provider server did not start: {failure}")

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        thread.join(10)
        self.port = None

    def __enter__(self) -> ProviderServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready))
        except BaseException as exc:
            failure.append(exc)
            ready.set()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        self._stopped = asyncio.Event()
        connections: set[asyncio.Task[None]] = set()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            connections.add(task)
            try:
                await self._connection(reader, writer)
            except asyncio.CancelledError:
                pass  # stopping: end the connection quietly
            finally:
                connections.discard(task)

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        await self._stopped.wait()
        server.close()
        for task in list(connections):
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        await server.wait_closed()

    # -- HTTP ---------------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One request per connection (answered with ``connection: close``)."""
        try:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            request_line = head.decode("latin-1").split("\r\n", 1)[0]
            method, target, _ = request_line.split(" ", 2)
            with self._lock:
                self.requests.append(target)
            reply = self._reply(method, target)
            if reply.hang is not None:
                await asyncio.sleep(reply.hang)
                return
            writer.write(
                f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Error')}\r\n"
                f"content-type: {reply.content_type}\r\ncontent-length: {len(reply.body)}\r\n"
                "connection: close\r\n\r\n".encode()
                + reply.body
            )
            await writer.drain()
        except ConnectionError:
            return
        finally:
            writer.close()

    def _reply(self, method: str, target: str) -> _Reply:
        parts = urlsplit(target)
        provider, _, path = parts.path.lstrip("/").partition("/")
        path = "/" + path
        if method != "GET" or provider not in PATHS or path not in PATHS[provider]:
            return _Reply(404, b'{"error": "not found"}')
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        with self._lock:
            fault = self.faults.get(provider)
            if fault is not None and fault.match is not None and fault.match not in target:
                fault = None
            prices = dict(self.prices[provider])
            now_ms = self.time_ms if self.time_ms is not None else time.time_ns() // 1_000_000
        name = fault.name if fault is not None else None
        if fault is not None and name == "timeout":
            return _Reply(200, b"", hang=fault.hang_s)
        if name in ("status_500", "status_503"):
            status = int(name.removeprefix("status_"))
            return _Reply(status, b"upstream trouble", content_type="text/plain")
        if fault is not None and name == "raw":
            return _Reply(fault.status, fault.body)
        if name == "wrong_shape":
            return _wrong_shape(provider)
        answer = _Answer(fault, now_ms)
        render = getattr(self, f"_{provider}")
        reply: _Reply = render(path, query, prices, answer)
        if name == "refused":
            reply = _refused(provider)
        if name == "malformed":
            reply = _Reply(reply.status, reply.body[: len(reply.body) // 2], reply.content_type)
        return reply

    # -- the providers ------------------------------------------------------------------------

    def _binance(
        self,
        path: str,
        query: dict[str, str],
        prices: dict[tuple[str, str], Price],
        answer: _Answer,
    ) -> _Reply:
        markets = {base + quote: price for (base, quote), price in prices.items()}
        if "symbols" in query:
            symbols = json.loads(query["symbols"])
        elif "symbol" in query:
            symbols = [query["symbol"]]
        else:
            symbols = list(markets)
        if any(symbol not in markets for symbol in symbols):
            return _Reply(400, _json({"code": -1121, "msg": "Invalid symbol."}))
        tickers = []
        for symbol in symbols:
            price = markets[symbol]
            tickers.append(
                {
                    "symbol": symbol,
                    "bidPrice": answer.price(price.bid or price.price),
                    "bidQty": "125000.00000000",
                    "askPrice": answer.price(price.ask or price.price),
                    "askQty": "98000.00000000",
                }
            )
        return _Reply(200, _json(tickers if "symbol" not in query else tickers[0]))

    def _okx(
        self,
        path: str,
        query: dict[str, str],
        prices: dict[tuple[str, str], Price],
        answer: _Answer,
    ) -> _Reply:
        if path.endswith("/exchange-rate"):
            rate = prices.get(("USD", "CNY"))
            data = [] if rate is None else [{"usdCny": answer.price(rate.price)}]
            return _Reply(200, _json({"code": "0", "msg": "", "data": data}))
        indices = []
        for (base, quote), price in prices.items():
            inst_id = f"{base}-{quote}"
            if (base, quote) == ("USD", "CNY"):
                continue
            if "quoteCcy" in query and quote != query["quoteCcy"]:
                continue
            if "instId" in query and inst_id != query["instId"]:
                continue
            text = answer.price(price.price)
            indices.append(
                {
                    "instId": inst_id,
                    "idxPx": text,
                    "high24h": text,
                    "sodUtc0": text,
                    "open24h": text,
                    "low24h": text,
                    "sodUtc8": text,
                    "ts": str(answer.time_ms()),
                }
            )
        if "instId" in query and not indices:
            return _Reply(
                200, _json({"code": "51001", "msg": "Instrument ID does not exist", "data": []})
            )
        return _Reply(200, _json({"code": "0", "msg": "", "data": indices}))

    def _kraken(
        self,
        path: str,
        query: dict[str, str],
        prices: dict[tuple[str, str], Price],
        answer: _Answer,
    ) -> _Reply:
        listed = {base + quote: price for (base, quote), price in prices.items()}
        names = query["pair"].split(",") if "pair" in query else list(listed)
        if any(name not in listed for name in names):
            return _Reply(200, _json({"error": ["EQuery:Unknown asset pair"]}))
        result = {}
        for name in names:
            price = listed[name]
            mid = answer.price(price.price)
            bid = answer.price(price.bid or price.price)
            ask = answer.price(price.ask or price.price)
            result["USDTZUSD" if name == "USDTUSD" else name] = {
                "a": [ask, "1200", "1200.000"],
                "b": [bid, "3400", "3400.000"],
                "c": [mid, "150.00000000"],
                "v": ["2500000.00000000", "7400000.00000000"],
                "p": [mid, mid],
                "t": [1520, 4410],
                "l": [bid, bid],
                "h": [ask, ask],
                "o": mid,
            }
        return _Reply(200, _json({"error": [], "result": result}))

    def _coinbase(
        self,
        path: str,
        query: dict[str, str],
        prices: dict[tuple[str, str], Price],
        answer: _Answer,
    ) -> _Reply:
        coin = query.get("currency", "USD")
        rates = {
            quote: answer.price(price.price)
            for (base, quote), price in prices.items()
            if base == coin
        }
        if not rates:
            error = {"errors": [{"id": "invalid_request", "message": "Invalid currency"}]}
            return _Reply(400, _json(error))
        return _Reply(200, _json({"data": {"currency": coin, "rates": rates}}))

    def _coingecko(
        self,
        path: str,
        query: dict[str, str],
        prices: dict[tuple[str, str], Price],
        answer: _Answer,
    ) -> _Reply:
        ids = query.get("ids", "").split(",")
        wanted = query.get("vs_currencies", "").split(",")
        coins = []
        for coin_id in ids:
            coin = next((code for code, name in COINGECKO_IDS.items() if name == coin_id), None)
            fields = [
                (fiat.lower(), answer.price(price.price))
                for (base, fiat), price in prices.items()
                if base == coin and fiat.lower() in wanted
            ]
            if not fields:
                continue
            if query.get("include_last_updated_at") == "true":
                fields.append(("last_updated_at", str(answer.time_ms() // 1000)))
            members = ",".join(f"{json.dumps(key)}:{_number(value)}" for key, value in fields)
            coins.append(f"{json.dumps(coin_id)}:{{{members}}}")
        return _Reply(200, ("{" + ",".join(coins) + "}").encode())

    def _ecb(
        self,
        path: str,
        query: dict[str, str],
        prices: dict[tuple[str, str], Price],
        answer: _Answer,
    ) -> _Reply:
        day = datetime.fromtimestamp(answer.now_ms / 1000, UTC).date()
        if answer.fault is not None and answer.fault.name == "stale":
            day -= timedelta(days=7)
        cubes = "".join(
            f"\t\t\t<Cube currency='{quote}' rate='{answer.price(price.price)}'/>\n"
            for (base, quote), price in prices.items()
            if base == "EUR"
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" '
            'xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">\n'
            "\t<gesmes:subject>Reference rates</gesmes:subject>\n"
            "\t<gesmes:Sender>\n\t\t<gesmes:name>European Central Bank</gesmes:name>\n"
            "\t</gesmes:Sender>\n"
            f"\t<Cube>\n\t\t<Cube time='{day.isoformat()}'>\n{cubes}\t\t</Cube>\n\t</Cube>\n"
            "</gesmes:Envelope>\n"
        )
        return _Reply(200, body.encode(), content_type="text/xml")


def _check_provider(provider: str) -> None:
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}; known: {', '.join(PROVIDERS)}")


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


def _number(text: str) -> str:
    """A JSON number when the text is one (CoinGecko sends numbers), else a JSON string."""
    return text if _JSON_NUMBER.fullmatch(text) else json.dumps(text)


def _refused(provider: str) -> _Reply:
    if provider == "okx":
        return _Reply(
            200, _json({"code": "50001", "msg": "Service temporarily unavailable", "data": []})
        )
    return _Reply(200, _json({"error": ["EService:Unavailable"]}))


def _wrong_shape(provider: str) -> _Reply:
    """Valid JSON or XML, not the documented shape (as from a captive portal or an API change)."""
    bodies: dict[str, bytes] = {
        "binance": _json({"symbol": "EURUSDT", "bidPrice": "1.0849", "askPrice": "1.0851"}),
        "okx": _json({"code": "0", "msg": "", "data": {"instId": "USDT-USD", "idxPx": "1"}}),
        "kraken": _json({"error": [], "result": [["USDTZUSD", "1.0"]]}),
        "coinbase": _json({"data": [{"currency": "USDT", "rates": {"USD": "1"}}]}),
        "coingecko": _json(["tether", "usd-coin", "dai"]),
        "ecb": b"<html><body>Service temporarily unavailable</body></html>",
    }
    content_type = "text/html" if provider == "ecb" else "application/json"
    return _Reply(200, bodies[provider], content_type)
