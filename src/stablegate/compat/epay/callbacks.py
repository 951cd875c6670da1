"""The paid-order callbacks of Epusdt and EPay, for the webhook worker
(:mod:`stablegate.webhooks.callbacks`): built from the stored ``order.completed`` event (the
order as it was when it completed, with the foreign fields its ``metadata`` kept) and signed
afresh on every attempt with the key of the credential that created the order.

- Epusdt: ``POST`` JSON ``{trade_id, order_id, amount, actual_amount, token,
  block_transaction_id, signature, status: 2}`` (amounts are numbers: the fiat amount asked and
  the token amount); the receiver must answer exactly ``ok``.
- EPay: ``GET notify_url?pid=&trade_no=&out_trade_no=&type=&name=&money=&trade_status=
  TRADE_SUCCESS&param=&sign=&sign_type=MD5`` (``money`` as the shop sent it; parameters the
  notify URL already had are kept and signed too); the answer must contain ``success``.

Any other event of such an order is not a callback: the worker logs it as ``skipped``. Both
answers must also have a 2xx status; anything else is a failed attempt, retried on the webhook
schedule (docs/DESIGN.md §8) for 72 hours.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode

from stablegate.compat.epay.signing import EPAY_UNSIGNED, EPUSDT_UNSIGNED, Value, md5_sign
from stablegate.compat.epay.wire import exact_json
from stablegate.models.order import NotifyFormat
from stablegate.webhooks.callbacks import CallbackFormat, CallbackRequest
from stablegate.webhooks.claims import Claim

PAID_EVENT = "order.completed"
USER_AGENT = "stablegate-callbacks"


def _data(claim: Claim) -> dict[str, Any]:
    data = claim.payload.get("data")
    if not isinstance(data, dict):
        raise ValueError("the event carries no order")
    return data


def _echoed(data: dict[str, Any], notify_format: NotifyFormat) -> dict[str, str]:
    metadata = data.get("metadata") or {}
    stored = metadata.get(notify_format.value) if isinstance(metadata, dict) else None
    return {str(k): str(v) for k, v in stored.items()} if isinstance(stored, dict) else {}


def _unpaid(claim: Claim) -> str | None:
    event_type = claim.payload.get("type")
    if event_type == PAID_EVENT:
        return None
    return f"{claim.notify_format} callbacks are sent when the order is paid, not for {event_type}"


def _number(text: object) -> Decimal:
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not an amount")
    return value


def _key(claim: Claim) -> str:
    if not claim.secrets:
        raise ValueError("the claim carries no credential key")
    return claim.secrets[0]


class EpusdtCallback:
    def skip_reason(self, claim: Claim) -> str | None:
        return _unpaid(claim)

    def request(self, claim: Claim, url: str) -> CallbackRequest:
        data = _data(claim)
        echoed = _echoed(data, NotifyFormat.EPUSDT)
        params: dict[str, Value] = {
            "trade_id": str(data["orderId"]),
            "order_id": str(data["orderNo"]),
            "amount": _number(echoed.get("amount") or data.get("fiatAmount")),
            "actual_amount": _number(data["amount"]),
            "token": str(data["toAddress"]),
            "block_transaction_id": str(data.get("txId") or ""),
            "status": 2,
        }
        body = {**params, "signature": md5_sign(params, _key(claim), EPUSDT_UNSIGNED)}
        return CallbackRequest(
            "POST",
            url,
            exact_json(body).encode("utf-8"),
            {"Content-Type": "application/json", "User-Agent": USER_AGENT},
        )

    def acknowledged(self, status_code: int, body: bytes) -> bool:
        return body == b"ok"


class EpayCallback:
    def skip_reason(self, claim: Claim) -> str | None:
        return _unpaid(claim)

    def request(self, claim: Claim, url: str) -> CallbackRequest:
        data = _data(claim)
        echoed = _echoed(data, NotifyFormat.EPAY)
        params: dict[str, str] = {
            "pid": str(claim.credential_id or ""),
            "trade_no": str(data["orderId"]),
            "out_trade_no": str(data["orderNo"]),
            "type": echoed.get("type", ""),
            "name": echoed.get("name", ""),
            "money": echoed.get("money") or str(data.get("fiatAmount") or ""),
            "trade_status": "TRADE_SUCCESS",
            "param": echoed.get("param", ""),
        }
        # A receiver verifies over everything in its query ($_GET), so parameters already in
        # the notify URL are signed with ours (ours win a name they share).
        base, _, own_query = url.partition("?")
        merged: dict[str, str] = {**dict(parse_qsl(own_query, keep_blank_values=True)), **params}
        signed: dict[str, Value] = dict(merged)
        sign = md5_sign(signed, _key(claim), EPAY_UNSIGNED)
        query = urlencode({**merged, "sign": sign, "sign_type": "MD5"})
        return CallbackRequest("GET", f"{base}?{query}", b"", {"User-Agent": USER_AGENT})

    def acknowledged(self, status_code: int, body: bytes) -> bool:
        return b"success" in body


def callback_formats() -> dict[str, CallbackFormat]:
    """The formats to give a webhook worker, by ``orders.notify_format``."""
    return {NotifyFormat.EPUSDT.value: EpusdtCallback(), NotifyFormat.EPAY.value: EpayCallback()}
