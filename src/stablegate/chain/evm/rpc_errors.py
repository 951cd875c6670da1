"""What failed in a JSON-RPC call: the call itself, its block range, or the provider.

- :class:`RpcError`: a call failed. Raised as such when the node rejected the call itself (a
  revert, invalid params, an unknown method): the same call would fail anywhere, so it is never
  retried on another URL.
- :class:`RpcRangeTooLarge` (an ``RpcError``): ``eth_getLogs`` asked for more than the provider
  serves (-32005, "query returned more than 10000 results", "block range", "response size"...);
  ask again with a smaller block range. Not retried elsewhere and not counted against the URL.
- :class:`RpcUnavailable` (an ``RpcError``): no URL gave a usable answer: transport errors,
  timeouts, HTTP errors (5xx, 429...), malformed or truncated JSON, provider-side JSON-RPC errors
  (-32603 internal, rate limits, "header not found"...). Reads were tried on the other URLs
  first; writes were sent once, so their outcome is unknown (re-sending the same raw transaction
  is harmless).

:class:`EndpointFailure` never leaves the client: it makes the client try another URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# JSON-RPC errors that say the provider, not the call, failed: worth another URL.
_PROVIDER_CODES = frozenset({-32603, -32005, -32002, -32001, 429})
_PROVIDER_HINTS = (
    "header not found",
    "missing trie node",
    "unknown block",
    "not synced",
    "syncing",
    "timeout",
    "timed out",
    "internal error",
    "unavailable",
    "try again",
    "busy",
    "overloaded",
    "capacity",
)
_RATE_LIMIT_HINTS = ("rate limit", "too many requests", "rate exceeded", "request rate")
_RANGE_HINTS = ("more than", "range", "limit", "response size", "too many", "exceed", "too large")


class RpcError(Exception):
    """A JSON-RPC call failed; ``data`` holds revert data when there is some."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data

    @property
    def revert_data(self) -> bytes | None:
        """The revert payload of a failed eth_call/eth_estimateGas, if the node returned it."""
        data = self.data
        if isinstance(data, dict):  # some nodes nest it: {"data": "0x..."}
            data = data.get("data")
        if isinstance(data, str) and data.startswith("0x"):
            try:
                return bytes.fromhex(data[2:])
            except ValueError:
                return None
        return None


class RpcRangeTooLarge(RpcError):
    """``eth_getLogs`` covered more blocks or results than the provider serves: halve the range."""


class RpcUnavailable(RpcError):
    """No URL gave a usable answer; ``failures`` lists (redacted URL, reason) per attempt."""

    def __init__(self, what: str, failures: Sequence[tuple[str, str]]) -> None:
        detail = "; ".join(f"{url}: {reason}" for url, reason in failures)
        super().__init__(-32603, f"{what}: no RPC endpoint answered ({detail})")
        self.failures = list(failures)


class EndpointFailure(Exception):
    """This URL failed (not the call): try another one if the call may be repeated."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def unwrap(method: str, answer: dict[str, Any]) -> Any:
    """The result of one JSON-RPC answer; :class:`RpcError` if the node refused the call,
    :class:`EndpointFailure` if the answer is malformed or the provider failed."""
    error = answer.get("error")
    if error is None:
        if "result" not in answer:
            raise EndpointFailure(f"{method}: answer without result {preview(answer)}")
        return answer["result"]
    if not isinstance(error, dict):
        raise EndpointFailure(f"{method}: malformed error {preview(error)}")
    try:
        code = int(error.get("code", -32603))
    except (TypeError, ValueError):
        code = -32603
    message = str(error.get("message", ""))
    kind = classify(method, code, message)
    if kind is EndpointFailure:
        raise EndpointFailure(f"{method}: {code} {message}")
    raise kind(code, message, error.get("data"))


def classify(method: str, code: int, message: str) -> type[Exception]:
    """Who failed: the call (:class:`RpcError`), its range (:class:`RpcRangeTooLarge`) or the
    provider (:class:`EndpointFailure`)."""
    text = message.lower()
    if code == 3 or "revert" in text:
        return RpcError
    if any(hint in text for hint in _RATE_LIMIT_HINTS):
        return EndpointFailure
    if method == "eth_getLogs" and (code == -32005 or any(hint in text for hint in _RANGE_HINTS)):
        return RpcRangeTooLarge
    if code in _PROVIDER_CODES or any(hint in text for hint in _PROVIDER_HINTS):
        return EndpointFailure
    return RpcError
