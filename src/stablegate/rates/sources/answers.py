"""A provider's answer: getting it, and reading prices and times out of it, the same way for
every source.

Faults (``SourceFault``), whatever the provider:

- no answer in time, or no connection at all -> ``TIMEOUT``;
- a status other than 2xx, or an error the provider reports inside a 2xx body (Kraken's
  ``error`` list, OKX's ``code``) -> ``HTTP_STATUS``;
- a body that is not the documented shape (not JSON or XML, a missing key, a list where an
  object belongs, a missing or impossible timestamp) -> ``MALFORMED``: a provider that changed
  its format fails loudly instead of being half read;
- one price that is zero, negative, not a number, not finite or absurd is dropped with a
  ``rate_price_dropped`` warning; a source with no valid price left -> ``INVALID_PRICE``.

Numbers are read from the provider's text with ``Decimal``; JSON is parsed with
``parse_float=Decimal`` (and ``NaN``/``Infinity`` become non-finite Decimals, then dropped), so
no price is ever a float.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal, localcontext
from typing import Any, TypeVar

import httpx
import structlog

from stablegate.json_nesting import nested_deeper_than
from stablegate.rates.quote import Quote, SourceError, SourceFault

log = structlog.get_logger("stablegate.rates")

T = TypeVar("T")

# Real answers are a few kilobytes (OKX's list of USD indices, the largest, is under 100 kB);
# a body beyond this is not a price list, and reading it all would only cost memory.
MAX_ANSWER_BYTES = 2 * 1024 * 1024

# Prices outside these bounds are unit or decimal-point errors, not markets: every currency we
# quote costs between 0.5 (GBP per USD) and 20,000 (IDR per EUR) per token or euro. The finer
# sanity check, against the ECB cross, is the engine's.
LOWEST_PRICE = Decimal("0.001")
HIGHEST_PRICE = Decimal(10) ** 7

# JSON nesting: the deepest real answer is 4 levels.
_MAX_JSON_DEPTH = 32

# A price as text: digits, an optional fraction; no sign, exponent, spaces or underscores.
_PLAIN_NUMBER = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,30})?")


class UnlistedPair(Exception):
    """The provider says one of the pairs asked for does not exist (delisted or renamed)."""


def base_url(source: str, url: str) -> str:
    """The configured base URL without its trailing slash; ``ValueError`` at start-up for one
    that is not an absolute http(s) URL with a host (a path prefix, for a proxy, is fine)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"rate source {source}: invalid base URL {url!r}: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host or parsed.query:
        raise ValueError(
            f"rate source {source}: base URL must be http(s)://host[/path], got {url!r}"
        )
    return url.rstrip("/")


async def get_answer(
    client: httpx.AsyncClient,
    source: str,
    url: str,
    params: Mapping[str, str] | None = None,
    *,
    accept: str = "application/json",
) -> tuple[int, bytes]:
    """The status and body of ``GET url``, the body read up to :data:`MAX_ANSWER_BYTES`.
    Timeouts are the client's."""
    try:
        async with client.stream("GET", url, params=params, headers={"Accept": accept}) as reply:
            body = bytearray()
            async for chunk in reply.aiter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise SourceError(
                        source, SourceFault.MALFORMED, f"answer over {MAX_ANSWER_BYTES} bytes"
                    )
            return reply.status_code, bytes(body)
    except httpx.DecodingError as exc:
        raise SourceError(source, SourceFault.MALFORMED, f"undecodable answer: {exc}") from None
    except httpx.TimeoutException:
        raise SourceError(source, SourceFault.TIMEOUT, f"no answer in time from {url}") from None
    except httpx.RequestError as exc:
        raise SourceError(
            source, SourceFault.TIMEOUT, f"{type(exc).__name__} from {url}: {exc}"
        ) from None


async def get_body(
    client: httpx.AsyncClient,
    source: str,
    url: str,
    params: Mapping[str, str] | None = None,
    *,
    accept: str = "application/json",
) -> bytes:
    """The body of a 2xx answer; any other status is ``HTTP_STATUS``."""
    status, body = await get_answer(client, source, url, params, accept=accept)
    if not 200 <= status < 300:
        raise status_error(source, status, body)
    return body


def status_error(source: str, status: int, body: bytes) -> SourceError:
    excerpt = body[:200].decode("utf-8", "replace")
    return SourceError(source, SourceFault.HTTP_STATUS, f"HTTP {status}: {excerpt}")


def parse_json(source: str, body: bytes) -> Any:
    """The JSON document, every non-integer number a ``Decimal``."""
    if nested_deeper_than(body, _MAX_JSON_DEPTH):
        raise malformed(source, f"not JSON: nested deeper than {_MAX_JSON_DEPTH}")
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=Decimal)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        raise SourceError(source, SourceFault.MALFORMED, f"not JSON: {exc}") from None


def malformed(source: str, message: str) -> SourceError:
    return SourceError(source, SourceFault.MALFORMED, message)


def as_object(source: str, value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise malformed(source, f"{what} is not an object")
    return value


def as_list(source: str, value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise malformed(source, f"{what} is not a list")
    return value


def read_price(source: str, value: object, pair: str) -> Decimal | None:
    """A valid price, or ``None`` (logged) for zero, negative, non-numeric, non-finite or absurd.

    Accepts plain decimal text (``"7.2134"``) and JSON numbers (already ``Decimal`` or ``int``).
    """
    number: Decimal | None = None
    if isinstance(value, str) and _PLAIN_NUMBER.fullmatch(value):
        number = Decimal(value)
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    reason = None
    if number is None:
        reason = "not a number"
    elif not number.is_finite():
        reason = "not finite"
    elif number <= 0:
        reason = "zero or negative"
    elif not LOWEST_PRICE <= number <= HIGHEST_PRICE:
        reason = "out of bounds"
    if reason is not None:
        log.warning(
            "rate_price_dropped", source=source, pair=pair, reason=reason, value=repr(value)[:40]
        )
        return None
    return number


def read_time_ms(source: str, value: object, *, unit_ms: int, received_ms: int) -> int:
    """A provider's timestamp (``unit_ms`` milliseconds per unit: 1 for ms, 1000 for seconds),
    as an integer or integer text, never later than when its answer arrived: a clock running
    ahead must not make a price look fresher than it is."""
    if isinstance(value, str) and value.isdigit() and len(value) <= 16:
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise malformed(source, f"timestamp {repr(value)[:40]} is not an integer")
    if number <= 0:
        raise malformed(source, f"timestamp {number} is not positive")
    return min(number * unit_ms, received_ms)


def book_quote(
    source: str,
    base: str,
    quote: str,
    bid_value: object,
    ask_value: object,
    time_ms: int,
    *,
    invert: bool = False,
) -> Quote | None:
    """The quote of a market's best bid and ask (mid = their mean), or ``None`` (logged) when
    either is invalid or the book is crossed.

    ``invert``: the market is priced the other way round (Binance's EURUSDT is USDT per EUR):
    the quote's bid is 1/ask and its ask 1/bid, rounded to 12 significant digits.
    """
    pair = f"{base}/{quote}"
    bid = read_price(source, bid_value, pair)
    ask = read_price(source, ask_value, pair)
    if bid is None or ask is None:
        return None
    if bid > ask:
        log.warning("rate_price_dropped", source=source, pair=pair, reason="crossed book")
        return None
    if invert:
        bid, ask = inverse(ask), inverse(bid)
    return Quote(source, base, quote, (bid + ask) / 2, bid, ask, time_ms)


def inverse(price: Decimal) -> Decimal:
    """``1 / price`` to 12 significant digits: more than any market's own precision."""
    with localcontext() as context:
        context.prec = 12
        return Decimal(1) / price


def require_quotes(source: str, quotes: list[Quote]) -> list[Quote]:
    if not quotes:
        raise SourceError(source, SourceFault.INVALID_PRICE, "no valid price in the answer")
    return quotes


async def ask_listed(
    source: str,
    pairs: Sequence[str],
    unlisted: set[str],
    ask: Callable[[list[str]], Awaitable[T]],
) -> list[T]:
    """Answers for ``pairs`` from one request when the provider lists them all. Providers that
    refuse a whole request for one unknown pair (Binance, Kraken) make ``ask`` raise
    :class:`UnlistedPair`: then each pair is asked alone, once, and the ones the provider does
    not list are remembered in ``unlisted`` (and logged) and never asked again."""
    wanted = [pair for pair in pairs if pair not in unlisted]
    if not wanted:
        return []
    try:
        return [await ask(wanted)]
    except UnlistedPair:
        pass
    answers = []
    for pair in wanted:
        try:
            answers.append(await ask([pair]))
        except UnlistedPair:
            unlisted.add(pair)
            log.warning("rate_pair_unlisted", source=source, pair=pair)
    return answers


def gather_quotes(source: str, answers: Sequence[list[Quote] | BaseException]) -> list[Quote]:
    """The quotes of several requests to one source (``asyncio.gather(...,
    return_exceptions=True)``): a failed request is logged and left out; when every one failed,
    the first failure is the source's. Anything but a ``SourceError`` is a bug and re-raised."""
    quotes: list[Quote] = []
    failures: list[SourceError] = []
    for answer in answers:
        if isinstance(answer, SourceError):
            failures.append(answer)
        elif isinstance(answer, BaseException):
            raise answer
        else:
            quotes.extend(answer)
    if failures and len(failures) == len(answers):
        raise failures[0]
    for failure in failures:
        log_failed_request(source, failure)
    return quotes


def log_failed_request(source: str, failure: SourceError) -> None:
    """One request of several failed; the source still answers with the others."""
    log.warning(
        "rate_request_failed", source=source, fault=str(failure.fault), error=failure.message
    )
