"""ORM tables, one file each. Importing this package registers them all on ``Base.metadata``."""

from stablegate.models.amount_offset import AmountOffset
from stablegate.models.api_key import ApiKey, ApiPublicKey
from stablegate.models.audit import AuditEntry
from stablegate.models.chain_state import ChainBlock, ChainState
from stablegate.models.credential_epoch import CredentialEpoch
from stablegate.models.dashboard_session import DashboardSession
from stablegate.models.dashboard_user import DashboardUser
from stablegate.models.email_link import EmailLink
from stablegate.models.gateway_setting import GatewaySetting
from stablegate.models.greenfield_webhook import GreenfieldWebhook
from stablegate.models.lease import Lease
from stablegate.models.merchant import Merchant, PayoutAddress
from stablegate.models.operator_account import OperatorAccount, OperatorSession
from stablegate.models.order import Order
from stablegate.models.payment import Payment
from stablegate.models.rate import RateHistory, RateQuote, RateRule
from stablegate.models.replay import ReplayKey
from stablegate.models.signup_invite import SignupInvite
from stablegate.models.sweep import SweepItem, SweepTx
from stablegate.models.webhook_delivery import WebhookDelivery
from stablegate.models.webhook_event import WebhookEvent

__all__ = [
    "AmountOffset",
    "ApiKey",
    "ApiPublicKey",
    "AuditEntry",
    "ChainBlock",
    "ChainState",
    "CredentialEpoch",
    "DashboardSession",
    "DashboardUser",
    "EmailLink",
    "GatewaySetting",
    "GreenfieldWebhook",
    "Lease",
    "Merchant",
    "OperatorAccount",
    "OperatorSession",
    "Order",
    "Payment",
    "PayoutAddress",
    "RateHistory",
    "RateQuote",
    "RateRule",
    "ReplayKey",
    "SignupInvite",
    "SweepItem",
    "SweepTx",
    "WebhookDelivery",
    "WebhookEvent",
]
