"""ORM tables, one file each. Importing this package registers them all on ``Base.metadata``."""

from stablegate.models.api_key import ApiKey, ApiPublicKey
from stablegate.models.audit import AuditEntry
from stablegate.models.merchant import Merchant, PayoutAddress
from stablegate.models.order import Order
from stablegate.models.replay import ReplayKey
from stablegate.models.webhook_event import WebhookEvent

__all__ = [
    "ApiKey",
    "ApiPublicKey",
    "AuditEntry",
    "Merchant",
    "Order",
    "PayoutAddress",
    "ReplayKey",
    "WebhookEvent",
]
