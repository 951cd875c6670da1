"""Everything the client raises.

Hierarchy::

    StablegateError(status, code, message)   the gateway refused the request, or never answered;
    │                                     itself for other statuses, and for ``invalid_response``
    │                                     (a 2xx answer of the wrong shape)
    ├── InvalidRequest         400, 413   invalid_body, invalid_amount, unknown_chain,
    │                                     unsupported_token, chain_unavailable, body_too_large...
    ├── AuthenticationError    401        invalid_api_key, invalid_signature, request_expired,
    │                                     replayed_request, signature_required...
    ├── Forbidden              403        ip_not_allowed (outside the API key's IP allowlist)
    ├── NotFound               404        not_found
    ├── Conflict               409        order_not_pending, no_free_offset...
    │   ├── OrderConflict      409        order_conflict: same orderNo, different fields
    │   └── OrderHasPayments   409        order_has_payments: too late to cancel
    ├── RateLimited            429        rate_limited; ``retry_after`` seconds
    │   └── IpBanned           418        ip_banned; ``retry_after`` seconds (never retried)
    ├── ServerError            5xx        the gateway failed; retried for idempotent calls
    └── NetworkError           status None: no HTTP answer (connection refused, timeout...)
    WebhookVerificationError              a webhook that must not be trusted (a ValueError)
    FlushError                            collecting a deposit address on chain failed

``code`` is the gateway's stable snake_case code; branch on it or on the class, never on
``message``.
"""

from __future__ import annotations


class StablegateError(Exception):
    """An error answer from the gateway (``status`` is None when there was no answer)."""

    def __init__(self, status: int | None, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if status is None else f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class InvalidRequest(StablegateError):
    """400 (or 413 ``body_too_large``): the request is wrong; sending it again will not help."""


class AuthenticationError(StablegateError):
    """401: missing or unknown key, bad or expired signature, replayed request."""


class Forbidden(StablegateError):
    """403, e.g. ``ip_not_allowed``: the API key may not be used from this address."""


class NotFound(StablegateError):
    """404: no such order (or event) for this merchant."""


class Conflict(StablegateError):
    """409: the request contradicts the order's state."""


class OrderConflict(Conflict):
    """409 ``order_conflict``: this ``orderNo`` already exists with different fields."""


class OrderHasPayments(Conflict):
    """409 ``order_has_payments``: a payment was seen, so the order can no longer be cancelled."""


class RateLimited(StablegateError):
    """429 ``rate_limited`` after the client's retries; wait ``retry_after`` seconds."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: float) -> None:
        super().__init__(status, code, message)
        self.retry_after = retry_after


class IpBanned(RateLimited):
    """418 ``ip_banned``: too many requests while rate limited; banned for ``retry_after`` s."""


class ServerError(StablegateError):
    """5xx: the gateway failed to answer this request."""


class NetworkError(StablegateError):
    """No HTTP answer: connection refused or reset, DNS failure, timeout (``status`` is None)."""


class WebhookVerificationError(ValueError):
    """A webhook whose time or signature does not check out: answer 400 and do not act on it."""


class FlushError(Exception):
    """Deploying or flushing a deposit address failed (the node refused, or it reverted)."""
