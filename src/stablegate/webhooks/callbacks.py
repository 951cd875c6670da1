"""Foreign callback formats: how the worker sends an order's notification when the order was
made through a compatibility API (``orders.notify_format`` other than ``signed``).

The worker keeps its rows, schedule, SSRF guard, pinning and log for them; a format only says
which events it sends (EPay and Epusdt call back once, when the order is paid; Greenfield the
event types the store's webhook subscribed to), builds the request from the claimed event
(signed with the credential's or the webhook's key, which the claim carries), and
judges the answer (Epusdt wants the body ``ok``, EPay a body containing ``success``). The
formats themselves are stablegate.compat's; whoever builds the worker hands them in. A worker
without the order's format does not guess: the attempt is an ``error``, retried on the schedule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from stablegate.webhooks.claims import Claim


@dataclass(frozen=True)
class CallbackRequest:
    method: str  # GET or POST
    url: str  # the notify URL, with the query for a GET
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class CallbackFormat(Protocol):
    def skip_reason(self, claim: Claim) -> str | None:
        """Why ``claim``'s event is not sent (it is then logged ``skipped``), or None to send it."""
        ...

    def request(self, claim: Claim, url: str) -> CallbackRequest:
        """The request for ``claim`` (``claim.secrets[0]`` is the credential's key)."""
        ...

    def acknowledged(self, status_code: int, body: bytes) -> bool:
        """Whether the receiver's answer (status, first 256 bytes) took the callback."""
        ...
