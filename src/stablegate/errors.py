"""Business errors, rendered by one handler as ``{"error": {"code", "message"}}``.

Every error the gateway answers with is a :class:`GatewayError` carrying a stable snake_case
``code`` and an HTTP ``status``. Services raise these and never HTTP exceptions.

Hierarchy::

    GatewayError                       any business error (status and code per instance)
    ├── InvalidRequest        400      malformed input: invalid_body, invalid_amount,
    │                                  invalid_notify_url, ...
    ├── AuthError             401      missing_api_key, invalid_api_key, invalid_signature,
    │                                  request_expired, replayed_request, signature_required
    ├── Forbidden             403      forbidden
    │   └── IpNotAllowed      403      ip_not_allowed (the API key's IP allowlist does not hold
    │                                  the client's address; refused before anything else)
    ├── NotFound              404      not_found
    ├── Conflict              409      order_conflict, order_has_payments, no_free_offset
    ├── RateLimited           429/418  rate_limited, ip_banned, too_many_streams (live-status
    │                                  streams open at once); all carry retry_after seconds
    ├── ChainUnavailable      400      chain_unavailable (known chain, no RPC on this gateway:
    │                                  a permanent refusal, so not a retryable 503)
    └── RateUnavailable       503      rate_unavailable (no fresh, sane, agreeing rate for a
                                       fiat-priced order: retry later; nothing was stored)
"""

from __future__ import annotations


class GatewayError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers: dict[str, str] = {}


class InvalidRequest(GatewayError):
    status = 400
    code = "invalid_body"


class AuthError(GatewayError):
    status = 401
    code = "invalid_signature"


class Forbidden(GatewayError):
    status = 403
    code = "forbidden"


class IpNotAllowed(Forbidden):
    code = "ip_not_allowed"


class NotFound(GatewayError):
    status = 404
    code = "not_found"


class Conflict(GatewayError):
    status = 409
    code = "conflict"


class RateLimited(GatewayError):
    """429 ``rate_limited`` or ``too_many_streams``, or 418 ``ip_banned``; ``retry_after`` in
    whole seconds."""

    status = 429
    code = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        retry_after: int,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after), **(headers or {})}


class ChainUnavailable(GatewayError):
    status = 400
    code = "chain_unavailable"


class RateUnavailable(GatewayError):
    status = 503
    code = "rate_unavailable"
