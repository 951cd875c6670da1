"""Python client for the stablegate payment gateway.

- :class:`Client` / :class:`AsyncClient`: create, query, list and cancel orders over the signed
  merchant API (V1 ECDSA or V2 HMAC, signed afresh per attempt, retried safely).
- :func:`verify_webhook`: check a webhook's time and signatures and parse its event.
- :func:`flush`: collect a deposit address on chain without the gateway.
"""

from stablegate_client._client import AsyncClient, Client
from stablegate_client._errors import (
    AuthenticationError,
    Conflict,
    FlushError,
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
    WebhookVerificationError,
)
from stablegate_client._flush import deposit_salt, flush
from stablegate_client._models import (
    Chain,
    Delivery,
    DeliveryPage,
    FlushResult,
    Order,
    OrderPage,
    OrderStatus,
    Payment,
    PaymentKind,
    PaymentStatus,
    SigningKey,
    Token,
    WebhookEvent,
)
from stablegate_client._signing import generate_key_pair, sign_v1, sign_v2, signing_string
from stablegate_client._version import __version__
from stablegate_client._webhooks import verify_webhook

__all__ = [
    "AsyncClient",
    "AuthenticationError",
    "Chain",
    "Client",
    "Conflict",
    "Delivery",
    "DeliveryPage",
    "FlushError",
    "FlushResult",
    "Forbidden",
    "InvalidRequest",
    "IpBanned",
    "NetworkError",
    "NotFound",
    "Order",
    "OrderConflict",
    "OrderHasPayments",
    "OrderPage",
    "OrderStatus",
    "Payment",
    "PaymentKind",
    "PaymentStatus",
    "RateLimited",
    "ServerError",
    "SigningKey",
    "StablegateError",
    "Token",
    "WebhookEvent",
    "WebhookVerificationError",
    "__version__",
    "deposit_salt",
    "flush",
    "generate_key_pair",
    "sign_v1",
    "sign_v2",
    "signing_string",
    "verify_webhook",
]

# Exported names report the public module (as httpx does), so tracebacks and docs say
# ``stablegate_client.Order`` rather than a private module.
for _name in __all__:
    _obj = globals()[_name]
    if hasattr(_obj, "__module__"):
        _obj.__module__ = "stablegate_client"
del _name, _obj
