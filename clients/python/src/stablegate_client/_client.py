"""``Client`` and ``AsyncClient``: the merchant API, signed, retried, typed.

Both share :class:`_Core`, which builds and signs each attempt and decides whether and when to try
again; the two classes differ only in how they send and sleep.

Retries (``max_retries`` further attempts):

- 429: always (the gateway rejected the request before handling it), after ``Retry-After`` plus
  jitter, so a well-behaved client never provokes the 418 ban. A ``Retry-After`` longer than
  ``max_retry_wait`` is raised as :class:`RateLimited` at once instead of blocking.
- 418: never; :class:`IpBanned` is raised.
- Connection failures before the request was sent: always.
- 5xx and failures after the request may have arrived: only for calls that are safe to repeat.
  Reads are; order creation is, because the body always carries an ``orderNo`` (one is generated
  when the caller gives none) and the same bytes are resent; cancelling is (cancelling twice is
  harmless). Resending webhooks is not retried then, since it would queue the deliveries twice.
- 401 ``replayed_request`` (another sender signed the identical string in the same millisecond):
  at once with a later time, for calls that are safe to repeat.

Every attempt is signed afresh: a new request time, hence a new signing string (the gateway
accepts a signing string once). The body is serialised once and the same bytes are hashed, signed
and sent on every attempt.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from stablegate_client._errors import (
    AuthenticationError,
    Conflict,
    Forbidden,
    InvalidRequest,
    IpBanned,
    NetworkError,
    NotFound,
    OrderConflict,
    OrderHasPayments,
    RateLimited,
    ServerError,
    StablegateError,
)
from stablegate_client._models import Chain, DeliveryPage, Order, OrderPage, SigningKey
from stablegate_client._signing import (
    API_KEY_HEADER,
    RECV_WINDOW_HEADER,
    REQUEST_TIME_HEADER,
    SIGNATURE_V1_HEADER,
    SIGNATURE_V2_HEADER,
    load_p256_private_key,
    sign_v1,
    sign_v2,
    signing_string,
)
from stablegate_client._version import __version__

_CREATE = "/api/v1/payment/createQrOrder"
_QUERY = "/api/v1/payment/contractPayment"
_CANCEL = "/api/v1/payment/cancelOrder"
_RESEND = "/api/v1/webhook/resend"
_DELIVERIES = "/api/v1/webhook/deliveries"
_CHAINS = "/api/v1/public/chains"
_SIGNING_KEY = "/api/v1/public/signing-key"

_T = TypeVar("_T")

_BACKOFF_BASE = 0.5  # seconds; doubled per attempt
_BACKOFF_CAP = 30.0
# Errors raised before any byte of the request reached the gateway: always safe to retry.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    # Safe to send again when an answer may have been lost (5xx, read errors).
    idempotent: bool = True
    # Public endpoints take no credentials.
    authenticated: bool = True


def _system_now_ms() -> int:
    return time.time_ns() // 1_000_000


def _json_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _amount_text(amount: Decimal | str | int) -> str:
    """A decimal string for the wire; floats are refused (they cannot hold 0.1 exactly)."""
    if isinstance(amount, bool) or not isinstance(amount, Decimal | str | int):
        raise TypeError("amount must be a Decimal, a decimal string or an int, never a float")
    if isinstance(amount, str):
        try:
            parsed = Decimal(amount)
        except ArithmeticError:
            raise ValueError(f"amount is not a decimal number: {amount!r}") from None
        if not parsed.is_finite():
            raise ValueError(f"amount is not a decimal number: {amount!r}")
        return amount
    if isinstance(amount, Decimal):
        if not amount.is_finite():
            raise ValueError(f"amount is not a finite number: {amount!r}")
        return format(amount, "f")
    return str(amount)


def _one_of(order_id: str | None, order_no: str | None) -> tuple[str, str]:
    if (order_id is None) == (order_no is None):
        raise ValueError("give exactly one of order_id and order_no")
    return ("orderId", order_id) if order_id is not None else ("orderNo", str(order_no))


def _retry_after_seconds(response: httpx.Response) -> float:
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return float(value)
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return 1.0
        return max(0.0, when.timestamp() - time.time())
    return 1.0


def _error_from_response(response: httpx.Response) -> StablegateError:
    status = response.status_code
    code, message = f"http_{status}", response.reason_phrase or "error"
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = str(body["error"].get("code") or code)
        message = str(body["error"].get("message") or message)
    if status == 418:
        return IpBanned(status, code, message, retry_after=_retry_after_seconds(response))
    if status == 429:
        return RateLimited(status, code, message, retry_after=_retry_after_seconds(response))
    if status == 409:
        kind: type[StablegateError] = {
            "order_conflict": OrderConflict,
            "order_has_payments": OrderHasPayments,
        }.get(code, Conflict)
        return kind(status, code, message)
    if status >= 500:
        return ServerError(status, code, message)
    kinds: dict[int, type[StablegateError]] = {
        400: InvalidRequest,
        401: AuthenticationError,
        403: Forbidden,
        404: NotFound,
        413: InvalidRequest,
    }
    return kinds.get(status, StablegateError)(status, code, message)


def _parse(parser: Callable[[dict[str, Any]], _T], body: dict[str, Any]) -> _T:
    """Typed result from a 2xx body; a body of the wrong shape is an error, not a KeyError."""
    try:
        return parser(body)
    except (KeyError, TypeError, ValueError) as exc:
        raise StablegateError(
            None, "invalid_response", f"unexpected answer from the gateway ({exc!r})"
        ) from exc


def _json_result(response: httpx.Response) -> dict[str, Any]:
    """The JSON object of a 2xx answer; raises the typed error of any other answer."""
    if not response.is_success:
        raise _error_from_response(response)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise StablegateError(
            response.status_code, "invalid_response", "the gateway's answer is not a JSON object"
        )
    return body


class _Core:
    """Builds signed requests and decides on retries; no I/O."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        private_key_pem: str | bytes | None,
        secret_key: str | None,
        recv_window: int | None,
        max_retries: int,
        max_retry_wait: float,
        now_ms: Callable[[], int] | None,
    ) -> None:
        if private_key_pem is not None and secret_key is not None:
            raise ValueError(
                "give private_key_pem (V1) or secret_key (V2), not both: a key with a registered "
                "public key refuses V2"
            )
        if recv_window is not None and not 0 < recv_window <= 60_000:
            raise ValueError("recv_window must be from 1 to 60000 ms")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._private_key: ec.EllipticCurvePrivateKey | None = (
            None if private_key_pem is None else load_p256_private_key(private_key_pem)
        )
        self._secret_key = secret_key
        self.recv_window = None if recv_window is None else str(recv_window)
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self._now_ms = now_ms or _system_now_ms
        self._last_time = 0
        self._time_lock = threading.Lock()
        self._random = random.Random()  # jitter only; nothing secret

    def _request_time(self) -> str:
        # Strictly increasing, so two identical requests in one millisecond still sign two
        # different strings (the gateway accepts each signing string once).
        with self._time_lock:
            self._last_time = max(self._now_ms(), self._last_time + 1)
            return str(self._last_time)

    def build(self, call: _Call) -> httpx.Request:
        headers = {"User-Agent": f"stablegate-client/{__version__}", "Accept": "application/json"}
        if call.body is not None:
            headers["Content-Type"] = "application/json"
        request = httpx.Request(
            call.method,
            self.base_url + call.path,
            params=list(call.params) or None,
            content=call.body,
            headers=headers,
        )
        if call.authenticated:
            self._sign(request, call.body or b"")
        return request

    def _sign(self, request: httpx.Request, body: bytes) -> None:
        headers = {API_KEY_HEADER: self.api_key}
        if self._private_key is not None or self._secret_key is not None:
            request_time = self._request_time()
            # Sign the target exactly as it goes on the wire.
            raw_path, _, raw_query = request.url.raw_path.partition(b"?")
            message = signing_string(
                self.api_key,
                request_time,
                self.recv_window,
                request.method,
                raw_path.decode("ascii"),
                raw_query.decode("ascii"),
                body,
            )
            headers[REQUEST_TIME_HEADER] = request_time
            if self.recv_window is not None:
                headers[RECV_WINDOW_HEADER] = self.recv_window
            if self._private_key is not None:
                headers[SIGNATURE_V1_HEADER] = sign_v1(self._private_key, message)
            else:
                assert self._secret_key is not None
                headers[SIGNATURE_V2_HEADER] = sign_v2(self._secret_key, message)
        request.headers.update(headers)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(_BACKOFF_CAP, _BACKOFF_BASE * (1 << min(attempt, 16)))
        return ceiling / 2 + self._random.uniform(0, ceiling / 2)

    def retry_delay(self, call: _Call, attempt: int, error: StablegateError) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to raise ``error``."""
        if attempt >= self.max_retries or isinstance(error, IpBanned):
            return None
        if isinstance(error, RateLimited):
            if error.retry_after > self.max_retry_wait:
                return None
            # Never earlier than Retry-After; the jitter spreads clients that were limited together.
            return error.retry_after + self._random.uniform(0, self._backoff(attempt) / 2)
        if isinstance(error, AuthenticationError) and error.code == "replayed_request":
            # Another process sent the identical request in the same millisecond (or a proxy
            # sent ours twice). The next attempt has a later time, hence a new signing string.
            return 0.0 if call.idempotent else None
        if isinstance(error, NetworkError):
            cause = error.__cause__
            if isinstance(cause, _NOT_SENT) or call.idempotent:
                return self._backoff(attempt)
            return None
        if isinstance(error, ServerError) and call.idempotent:
            return self._backoff(attempt)
        return None

    # The calls, shared by both clients.

    def create_call(
        self,
        chain_id: int | str,
        symbol: str,
        amount: Decimal | str | int,
        *,
        order_no: str | None,
        cust_no: str | None,
        notify_url: str | None,
        redirect_url: str | None,
        expire_seconds: int | None,
        description: str | None,
        metadata: dict[str, Any] | None,
        inline_qr: bool,
        currency: str | None,
    ) -> _Call:
        payload: dict[str, Any] = {
            "chainId": str(chain_id),
            "symbol": symbol,
            "amount": _amount_text(amount),
            # Always sent, so a retry of a create whose answer was lost finds the same order.
            "orderNo": order_no if order_no is not None else f"sg-{uuid.uuid4().hex}",
        }
        optional = {
            "custNo": cust_no,
            "notifyUrl": notify_url,
            "redirectUrl": redirect_url,
            "expireSeconds": expire_seconds,
            "description": description,
            "metadata": metadata,
            "currency": currency,
        }
        payload.update({k: v for k, v in optional.items() if v is not None})
        if inline_qr:
            payload["inlineQr"] = True
        return _Call("POST", _CREATE, body=_json_bytes(payload))

    def get_call(self, order_id: str | None, order_no: str | None) -> _Call:
        return _Call("GET", _QUERY, params=(_one_of(order_id, order_no),))

    def list_call(
        self, status: str | None, since: int | None, limit: int | None, cursor: str | None
    ) -> _Call:
        raw = {"status": status, "since": since, "limit": limit, "cursor": cursor}
        return _Call(
            "GET", _QUERY, params=tuple((k, str(v)) for k, v in raw.items() if v is not None)
        )

    def cancel_call(self, order_id: str | None, order_no: str | None) -> _Call:
        name, value = _one_of(order_id, order_no)
        return _Call("POST", _CANCEL, body=_json_bytes({name: value}))

    def resend_call(self, event_id: str | None, failed: bool) -> _Call:
        if (event_id is None) == (not failed):
            raise ValueError("give either event_id or failed=True")
        payload: dict[str, Any] = (
            {"eventId": event_id} if event_id is not None else {"failed": True}
        )
        return _Call("POST", _RESEND, body=_json_bytes(payload), idempotent=False)

    def deliveries_call(
        self,
        event_id: str | None,
        order_id: str | None,
        limit: int | None,
        cursor: str | None,
    ) -> _Call:
        raw = {"eventId": event_id, "orderId": order_id, "limit": limit, "cursor": cursor}
        params = tuple((k, str(v)) for k, v in raw.items() if v is not None)
        return _Call("GET", _DELIVERIES, params=params)

    def chains_call(self) -> _Call:
        return _Call("GET", _CHAINS, authenticated=False)

    def signing_key_call(self) -> _Call:
        return _Call("GET", _SIGNING_KEY, authenticated=False)


def _chains(body: dict[str, Any]) -> tuple[Chain, ...]:
    return tuple(Chain.from_json(c) for c in body.get("chains") or ())


def _count(body: dict[str, Any]) -> int:
    return int(body["count"])


class Client:
    """Synchronous client of the merchant API.

    ``Client(base_url, api_key, private_key_pem=...)`` signs V1 (ECDSA P-256; use this once the
    operator registered your public key); ``secret_key=...`` signs V2 (HMAC). With neither, only
    unsigned reads work. ``sleep`` and ``now_ms`` are injectable for tests; ``http_client`` lets
    you bring your own ``httpx.Client`` (proxies, TLS settings), which is then not closed here.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        private_key_pem: str | bytes | None = None,
        secret_key: str | None = None,
        recv_window: int | None = 30_000,
        timeout: float = 10.0,
        max_retries: int = 3,
        max_retry_wait: float = 60.0,
        http_client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self._core = _Core(
            base_url,
            api_key,
            private_key_pem=private_key_pem,
            secret_key=secret_key,
            recv_window=recv_window,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
            now_ms=now_ms,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout, follow_redirects=False)
        self._sleep = sleep

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def _send(self, call: _Call) -> dict[str, Any]:
        attempt = 0
        while True:
            try:
                try:
                    response = self._http.send(self._core.build(call))
                except httpx.TransportError as exc:
                    raise NetworkError(None, "network_error", str(exc) or repr(exc)) from exc
                return _json_result(response)
            except StablegateError as error:
                delay = self._core.retry_delay(call, attempt, error)
                if delay is None:
                    raise
            self._sleep(delay)
            attempt += 1

    def create_order(
        self,
        chain_id: int | str,
        symbol: str,
        amount: Decimal | str | int,
        *,
        order_no: str | None = None,
        cust_no: str | None = None,
        notify_url: str | None = None,
        redirect_url: str | None = None,
        expire_seconds: int | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        inline_qr: bool = False,
        currency: str | None = None,
    ) -> Order:
        """Creates an order, or returns the existing one with this ``order_no`` and fields.

        Give your own ``order_no`` (your order id) so a crash between sending and storing the
        answer cannot leave you with two orders; one is generated otherwise.

        With ``currency`` (an ISO 4217 code such as ``"CNY"``) ``amount`` is a price in that
        currency: the gateway converts it to ``symbol`` at its current rate, rounded up, and
        locks the rate for the order (``Order.fiat_amount``, ``rate``, ``rate_source``).
        """
        call = self._core.create_call(
            chain_id,
            symbol,
            amount,
            order_no=order_no,
            cust_no=cust_no,
            notify_url=notify_url,
            redirect_url=redirect_url,
            expire_seconds=expire_seconds,
            description=description,
            metadata=metadata,
            inline_qr=inline_qr,
            currency=currency,
        )
        return _parse(Order.from_json, self._send(call))

    def get_order(self, order_id: str | None = None, order_no: str | None = None) -> Order:
        """One order with its payments, by the gateway's ``order_id`` or your ``order_no``."""
        return _parse(Order.from_json, self._send(self._core.get_call(order_id, order_no)))

    def list_orders(
        self,
        status: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> OrderPage:
        """A page of orders, newest first; ``since`` is Unix ms of creation."""
        return _parse(
            OrderPage.from_json, self._send(self._core.list_call(status, since, limit, cursor))
        )

    def iter_orders(
        self, status: str | None = None, since: int | None = None, page_size: int = 100
    ) -> Iterator[Order]:
        """Every order matching, following the cursors."""
        cursor: str | None = None
        while True:
            page = self.list_orders(status, since, page_size, cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def cancel_order(self, order_id: str | None = None, order_no: str | None = None) -> Order:
        """Cancels a pending order with no payment seen (else :class:`OrderHasPayments`)."""
        return _parse(Order.from_json, self._send(self._core.cancel_call(order_id, order_no)))

    def resend_webhook(self, event_id: str | None = None, failed: bool = False) -> int:
        """Queues one event again, or (``failed=True``) every event that failed for good or had
        no endpoint; returns how many were queued."""
        return _parse(_count, self._send(self._core.resend_call(event_id, failed)))

    def deliveries(
        self,
        event_id: str | None = None,
        order_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> DeliveryPage:
        """The webhook delivery log, one entry per attempt, newest first (always signed)."""
        call = self._core.deliveries_call(event_id, order_id, limit, cursor)
        return _parse(DeliveryPage.from_json, self._send(call))

    def chains(self) -> tuple[Chain, ...]:
        """The chains and tokens this gateway takes orders for (public, unsigned)."""
        return _parse(_chains, self._send(self._core.chains_call()))

    def signing_key(self) -> SigningKey:
        """The gateway's webhook public key (public, unsigned); pin it in your configuration
        rather than fetching it on every webhook."""
        return _parse(SigningKey.from_json, self._send(self._core.signing_key_call()))


async def _asyncio_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class AsyncClient:
    """The asynchronous twin of :class:`Client`: same arguments, same methods, awaitable."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        private_key_pem: str | bytes | None = None,
        secret_key: str | None = None,
        recv_window: int | None = 30_000,
        timeout: float = 10.0,
        max_retries: int = 3,
        max_retry_wait: float = 60.0,
        http_client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = _asyncio_sleep,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self._core = _Core(
            base_url,
            api_key,
            private_key_pem=private_key_pem,
            secret_key=secret_key,
            recv_window=recv_window,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
            now_ms=now_ms,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._sleep = sleep

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def _send(self, call: _Call) -> dict[str, Any]:
        attempt = 0
        while True:
            try:
                try:
                    response = await self._http.send(self._core.build(call))
                except httpx.TransportError as exc:
                    raise NetworkError(None, "network_error", str(exc) or repr(exc)) from exc
                return _json_result(response)
            except StablegateError as error:
                delay = self._core.retry_delay(call, attempt, error)
                if delay is None:
                    raise
            await self._sleep(delay)
            attempt += 1

    async def create_order(
        self,
        chain_id: int | str,
        symbol: str,
        amount: Decimal | str | int,
        *,
        order_no: str | None = None,
        cust_no: str | None = None,
        notify_url: str | None = None,
        redirect_url: str | None = None,
        expire_seconds: int | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        inline_qr: bool = False,
        currency: str | None = None,
    ) -> Order:
        """See :meth:`Client.create_order`."""
        call = self._core.create_call(
            chain_id,
            symbol,
            amount,
            order_no=order_no,
            cust_no=cust_no,
            notify_url=notify_url,
            redirect_url=redirect_url,
            expire_seconds=expire_seconds,
            description=description,
            metadata=metadata,
            inline_qr=inline_qr,
            currency=currency,
        )
        return _parse(Order.from_json, await self._send(call))

    async def get_order(self, order_id: str | None = None, order_no: str | None = None) -> Order:
        return _parse(Order.from_json, await self._send(self._core.get_call(order_id, order_no)))

    async def list_orders(
        self,
        status: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> OrderPage:
        call = self._core.list_call(status, since, limit, cursor)
        return _parse(OrderPage.from_json, await self._send(call))

    async def iter_orders(
        self, status: str | None = None, since: int | None = None, page_size: int = 100
    ) -> AsyncIterator[Order]:
        cursor: str | None = None
        while True:
            page = await self.list_orders(status, since, page_size, cursor)
            for order in page.items:
                yield order
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def cancel_order(self, order_id: str | None = None, order_no: str | None = None) -> Order:
        return _parse(Order.from_json, await self._send(self._core.cancel_call(order_id, order_no)))

    async def resend_webhook(self, event_id: str | None = None, failed: bool = False) -> int:
        return _parse(_count, await self._send(self._core.resend_call(event_id, failed)))

    async def deliveries(
        self,
        event_id: str | None = None,
        order_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> DeliveryPage:
        call = self._core.deliveries_call(event_id, order_id, limit, cursor)
        return _parse(DeliveryPage.from_json, await self._send(call))

    async def chains(self) -> tuple[Chain, ...]:
        return _parse(_chains, await self._send(self._core.chains_call()))

    async def signing_key(self) -> SigningKey:
        return _parse(SigningKey.from_json, await self._send(self._core.signing_key_call()))
