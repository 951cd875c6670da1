"""Merchant onboarding and lifecycle (create, approve, disable, policy) and the signed API's
keys: issuing them, their public keys and their policy (used by the CLI and the pages). A
merchant's payout addresses after creation are :mod:`stablegate.merchants.payout_addresses`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from eth_utils.address import is_address, to_checksum_address
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.auth.signatures import load_public_key_pem
from stablegate.auth.verify import signed_reads_required
from stablegate.clock import Clock
from stablegate.errors import InvalidRequest, NotFound
from stablegate.merchants.branding import (
    checked_display_name,
    checked_logo_url,
    checked_support_contact,
)
from stablegate.merchants.payout_check import PayoutCodeCheck
from stablegate.models import ApiKey, ApiPublicKey, AuditEntry, Merchant, PayoutAddress
from stablegate.models.api_key import CredentialKind
from stablegate.models.merchant import DepositStrategy, LatePaymentPolicy, MerchantStatus
from stablegate.outbound import DestinationError, parse_webhook_url
from stablegate.secret_box import SecretBox, new_token


@dataclass(frozen=True)
class NewMerchant:
    merchant_id: str
    api_key: str
    secret_key: str
    webhook_secret: str
    # The payout code check's warning the operator overrode with --force, if any.
    payout_warning: str | None = None


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def checksum_address(value: str) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise InvalidRequest(f"{value!r} is not an EVM address", code="invalid_address")
    address = str(to_checksum_address(value))
    if int(address, 16) == 0:
        raise InvalidRequest("the zero address cannot receive payouts", code="invalid_address")
    return address


def checked_notify_url(value: str) -> str:
    """A default webhook URL the delivery worker will accept (the SSRF guard's own check)."""
    try:
        parse_webhook_url(value)
    except DestinationError as exc:
        raise InvalidRequest(f"notify URL: {exc}", code="invalid_notify_url") from None
    return value


async def create_merchant(
    session: AsyncSession,
    box: SecretBox,
    clock: Clock,
    *,
    name: str,
    payout_address: str,
    chain_ids: list[int],
    notify_url: str | None = None,
    payout_code: PayoutCodeCheck | None = None,
    actor: str = "cli",
) -> NewMerchant:
    """A merchant with its first API key, paying out to ``payout_address`` on ``chain_ids``.
    ``payout_code`` asks those chains whether the address is a contract on some and not on
    others; None only where no chain can be asked (tests, the demo's fresh dev chain)."""
    address = checksum_address(payout_address)
    if notify_url is not None:
        notify_url = checked_notify_url(notify_url)
    warning = None if payout_code is None else await payout_code.run(chain_ids, address)
    merchant_id, webhook_secret = await add_merchant(
        session,
        box,
        clock,
        name=name,
        notify_url=notify_url,
        actor=actor,
        details={"payoutAddress": address, "chains": chain_ids},
    )
    now = clock.now_ms()
    for chain_id in chain_ids:
        session.add(
            PayoutAddress(
                merchant_id=merchant_id, chain_id=chain_id, address=address, updated_at_ms=now
            )
        )
    api_key, secret_key = await issue_api_key(session, box, clock, merchant_id)
    await session.flush()
    return NewMerchant(
        merchant_id=merchant_id,
        api_key=api_key,
        secret_key=secret_key,
        webhook_secret=webhook_secret,
        payout_warning=warning,
    )


async def add_merchant(
    session: AsyncSession,
    box: SecretBox,
    clock: Clock,
    *,
    name: str,
    notify_url: str | None = None,
    status: MerchantStatus = MerchantStatus.ACTIVE,
    actor: str = "cli",
    details: dict[str, object] | None = None,
) -> tuple[str, str]:
    """The merchant itself (audited), without payout addresses or keys: its id and webhook
    secret. The CLI's ``create`` adds both; a dashboard sign-up adds them later."""
    if not name.strip():
        raise InvalidRequest("merchant name must not be empty")
    merchant_id = new_token("mch_", 12)
    webhook_secret = new_token("whsec_", 24)
    now = clock.now_ms()
    session.add(
        Merchant(
            id=merchant_id,
            name=name.strip(),
            notify_url=notify_url,
            webhook_secret_enc=box.seal(webhook_secret),
            late_payment=LatePaymentPolicy.RECORD,
            underpay_tolerance_ppm=0,
            deposit_strategy=DepositStrategy.FORWARDER,
            status=status,
            created_at_ms=now,
        )
    )
    await session.flush()
    session.add(
        AuditEntry(
            at_ms=now,
            actor=actor,
            action="merchant.created",
            subject=merchant_id,
            details={**(details or {}), "status": str(status)},
        )
    )
    await session.flush()
    return merchant_id, webhook_secret


async def approve_merchant(
    session: AsyncSession, clock: Clock, *, merchant_id: str, actor: str = "cli"
) -> Merchant:
    """Let a merchant that signed up under the approval policy log in (audited; approving an
    active merchant changes nothing and is not an error)."""
    merchant = await get_merchant(session, merchant_id)
    if merchant.status != MerchantStatus.ACTIVE:
        merchant.status = MerchantStatus.ACTIVE
        session.add(
            AuditEntry(
                at_ms=clock.now_ms(),
                actor=actor,
                action="merchant.approved",
                subject=merchant_id,
                details={},
            )
        )
        await session.flush()
    return merchant


async def set_merchant_status(
    session: AsyncSession,
    clock: Clock,
    *,
    merchant_id: str,
    status: MerchantStatus,
    actor: str,
    reason: str | None = None,
) -> Merchant:
    """Disable a merchant (its API keys and dashboard sessions stop working on their next
    request: both are checked against the merchant's status every time) or make it active
    again. Audited; a merchant already in that status is left alone, unaudited."""
    merchant = await get_merchant(session, merchant_id)
    if merchant.status != status:
        action = "merchant.disabled" if status == MerchantStatus.DISABLED else "merchant.enabled"
        if status == MerchantStatus.ACTIVE and merchant.status == MerchantStatus.PENDING:
            action = "merchant.approved"
        details = {"from": str(merchant.status)}
        if reason:
            details["reason"] = reason[:500]
        merchant.status = status
        session.add(
            AuditEntry(
                at_ms=clock.now_ms(),
                actor=actor,
                action=action,
                subject=merchant_id,
                details=details,
            )
        )
        await session.flush()
    return merchant


async def issue_api_key(
    session: AsyncSession,
    box: SecretBox,
    clock: Clock,
    merchant_id: str,
    *,
    label: str | None = None,
) -> tuple[str, str]:
    """A new key pair, ``ak_…`` and its ``sk_…`` secret: returned once, stored as a hash and
    an encrypted secret."""
    api_key = new_token("ak_", 24)
    secret_key = new_token("sk_", 32)
    session.add(
        ApiKey(
            id=new_token("key_", 12),
            merchant_id=merchant_id,
            key_hash=hash_api_key(api_key),
            key_prefix=api_key[:10],
            label=label,
            secret_enc=box.seal(secret_key),
            v2_enabled=False,
            signed_reads=None,  # the default: signed once a public key is registered
            created_at_ms=clock.now_ms(),
        )
    )
    await session.flush()
    return api_key, secret_key


async def find_api_key(session: AsyncSession, api_key: str) -> ApiKey:
    """An active key of the signed API (the public-key and key-policy commands act on these)."""
    row = await session.scalar(
        select(ApiKey).where(
            ApiKey.key_hash == hash_api_key(api_key),
            ApiKey.revoked_at_ms.is_(None),
            ApiKey.kind == CredentialKind.SIGNED,
        )
    )
    if row is None:
        raise NotFound("no active API key matches", code="not_found")
    return row


async def get_merchant(session: AsyncSession, merchant_id: str) -> Merchant:
    """The merchant, or ``not_found``: a mistyped id is an error, never an empty answer."""
    merchant = await session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound(f"merchant {merchant_id} not found")
    return merchant


@dataclass(frozen=True)
class MerchantSummary:
    merchant_id: str
    name: str
    chain_ids: list[int]  # where it has a payout address
    created_at_ms: int
    status: str


async def list_merchants(session: AsyncSession) -> list[MerchantSummary]:
    """Every merchant, oldest first, with the chains it is paid out on."""
    merchants = (await session.scalars(select(Merchant).order_by(Merchant.created_at_ms))).all()
    payouts = await session.execute(
        select(PayoutAddress.merchant_id, PayoutAddress.chain_id).order_by(PayoutAddress.chain_id)
    )
    chains: dict[str, list[int]] = {}
    for merchant_id, chain_id in payouts.all():
        chains.setdefault(merchant_id, []).append(chain_id)
    return [
        MerchantSummary(
            merchant_id=m.id,
            name=m.name,
            chain_ids=chains.get(m.id, []),
            created_at_ms=m.created_at_ms,
            status=m.status,
        )
        for m in merchants
    ]


async def add_public_key(
    session: AsyncSession, clock: Clock, *, api_key: str, pem: bytes, actor: str = "cli"
) -> str:
    """Register a P-256 public key; from now on this key accepts V1 signatures only."""
    public_key = load_public_key_pem(pem)
    key = await find_api_key(session, api_key)
    return await register_public_key(session, clock, key, public_key, actor=actor)


def public_key_fingerprint(public_key: EllipticCurvePublicKey) -> str:
    """Lowercase hex SHA-256 of the key's DER SubjectPublicKeyInfo."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


async def register_public_key(
    session: AsyncSession,
    clock: Clock,
    key: ApiKey,
    public_key: EllipticCurvePublicKey,
    *,
    actor: str,
) -> str:
    """Attach a parsed P-256 public key to the active key ``key`` (audited) and return its
    fingerprint. The key's first public key makes it V1 only, whatever ``v2_enabled`` said
    before (V2 back needs ``merchant set-key-policy --v2``); the same public key twice changes
    nothing."""
    fingerprint = public_key_fingerprint(public_key)
    registered = (
        await session.scalars(
            select(ApiPublicKey.fingerprint).where(ApiPublicKey.api_key_id == key.id)
        )
    ).all()
    if fingerprint not in registered:
        if not registered:
            key.v2_enabled = False
        normalized = public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        session.add(
            ApiPublicKey(
                id=new_token("pk_", 12),
                api_key_id=key.id,
                pem=normalized,
                fingerprint=fingerprint,
                created_at_ms=clock.now_ms(),
            )
        )
        session.add(
            AuditEntry(
                at_ms=clock.now_ms(),
                actor=actor,
                action="api_key.public_key_added",
                subject=key.merchant_id,
                details={"apiKeyId": key.id, "fingerprint": fingerprint},
            )
        )
        await session.flush()
    return fingerprint


async def set_policy(
    session: AsyncSession,
    clock: Clock,
    *,
    merchant_id: str,
    late_payment: str | None = None,
    underpay_tolerance: str | None = None,
    deposit_strategy: str | None = None,
    notify_url: str | None = None,
    display_name: str | None = None,
    logo_url: str | None = None,
    support_contact: str | None = None,
    actor: str = "cli",
) -> dict[str, object]:
    """Change what is given (None keeps it); an empty string clears a branding field. A bad
    value raises, and the caller's transaction then writes nothing."""
    merchant = await session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound(f"merchant {merchant_id} not found")
    changes: dict[str, object] = {}
    if late_payment is not None:
        if late_payment not in set(LatePaymentPolicy):
            raise InvalidRequest("late payment policy is record or complete", code="invalid_policy")
        merchant.late_payment = changes["latePayment"] = LatePaymentPolicy(late_payment)
    if underpay_tolerance is not None:
        try:
            fraction = Decimal(underpay_tolerance)
        except InvalidOperation:
            raise InvalidRequest(
                "tolerance must be a decimal fraction", code="invalid_policy"
            ) from None
        if not Decimal(0) <= fraction < Decimal("0.1"):
            raise InvalidRequest(
                "tolerance must be at least 0 and below 0.1", code="invalid_policy"
            )
        merchant.underpay_tolerance_ppm = changes["underpayTolerancePpm"] = int(
            fraction * 1_000_000
        )
    if deposit_strategy is not None:
        if deposit_strategy not in set(DepositStrategy):
            raise InvalidRequest(
                "deposit strategy is forwarder or unique_amount", code="invalid_policy"
            )
        merchant.deposit_strategy = changes["depositStrategy"] = DepositStrategy(deposit_strategy)
    if notify_url is not None:
        merchant.notify_url = changes["notifyUrl"] = checked_notify_url(notify_url)
    if display_name is not None:
        merchant.display_name = changes["displayName"] = checked_display_name(display_name)
    if logo_url is not None:
        merchant.logo_url = changes["logoUrl"] = checked_logo_url(logo_url)
    if support_contact is not None:
        merchant.support_contact = changes["supportContact"] = checked_support_contact(
            support_contact
        )
    session.add(
        AuditEntry(
            at_ms=clock.now_ms(),
            actor=actor,
            action="merchant.policy_set",
            subject=merchant_id,
            details=dict(changes),
        )
    )
    await session.flush()
    return {"merchantId": merchant_id, **changes}


async def set_key_policy(
    session: AsyncSession,
    clock: Clock,
    *,
    api_key: str,
    v2_enabled: bool | None,
    signed_reads: bool | None,
    actor: str = "cli",
) -> dict[str, object]:
    """Set which signatures a key accepts. ``signed_reads`` True or False is an explicit choice
    that replaces the default (signed reads once a public key is registered); None keeps the
    current setting."""
    key = await find_api_key(session, api_key)
    return await apply_key_policy(
        session, clock, key, v2_enabled=v2_enabled, signed_reads=signed_reads, actor=actor
    )


async def apply_key_policy(
    session: AsyncSession,
    clock: Clock,
    key: ApiKey,
    *,
    v2_enabled: bool | None,
    signed_reads: bool | None,
    actor: str,
) -> dict[str, object]:
    """:func:`set_key_policy` on a key row the caller found (and scoped)."""
    if v2_enabled is not None:
        key.v2_enabled = v2_enabled
    if signed_reads is not None:
        key.signed_reads = signed_reads
    has_public_key = (
        await session.scalar(
            select(ApiPublicKey.id).where(ApiPublicKey.api_key_id == key.id).limit(1)
        )
        is not None
    )
    policy = {
        "apiKeyId": key.id,
        "v2Enabled": key.v2_enabled,
        "signedReads": signed_reads_required(key.signed_reads, has_public_key=has_public_key),
        "signedReadsDefault": key.signed_reads is None,
    }
    session.add(
        AuditEntry(
            at_ms=clock.now_ms(),
            actor=actor,
            action="api_key.policy_set",
            subject=key.merchant_id,
            details=dict(policy),
        )
    )
    await session.flush()
    return policy
