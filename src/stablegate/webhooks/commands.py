"""CLI commands for webhooks, mounted by :mod:`stablegate.cli`.

- ``stablegate webhooks list|deliveries|resend``: :data:`webhooks_app`
- ``stablegate merchant rotate-webhook-secret``: :func:`rotate_webhook_secret_command`
- ``stablegate deliver``: :func:`deliver_command` (the delivery worker, until SIGINT/SIGTERM)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import SystemClock
from stablegate.config import Settings
from stablegate.console import (
    JsonFlag,
    error_console,
    fail,
    output,
    print_json,
    print_record,
    print_rows,
    stop_on_signals,
    with_session,
)
from stablegate.db.engine import make_engine, make_sessionmaker
from stablegate.logs import configure_logging
from stablegate.merchants.service import get_merchant
from stablegate.migrations import upgrade
from stablegate.secret_box import SecretKeyMissing, load_secret_box
from stablegate.webhooks import service
from stablegate.webhooks.callbacks import CallbackFormat
from stablegate.webhooks.signing_key import load_signing_key
from stablegate.webhooks.worker import WebhookWorker

webhooks_app = typer.Typer(help="Webhook events, their delivery log, and redelivery.")

MerchantOption = Annotated[str | None, typer.Option(help="Merchant id (mch_...).")]


@webhooks_app.command("list")
def webhooks_list(
    merchant_id: MerchantOption = None,
    status: Annotated[
        str | None, typer.Option(help="pending, delivered, failed or no_endpoint.")
    ] = None,
    order_id: Annotated[str | None, typer.Option(help="Only this order's events.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List webhook events, newest first."""

    async def work(session: AsyncSession, _settings: Settings) -> list[dict[str, Any]]:
        await _known_merchant(session, merchant_id)
        events = await service.list_events(
            session, merchant_id=merchant_id, status=status, order_id=order_id, limit=limit
        )
        return [service.event_view(event) for event in events]

    columns = ["eventId", "orderId", "sequence", "type", "status", "attempts", "nextAttemptTime"]
    print_rows(with_session(work), columns, as_json)


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    merchant_id: MerchantOption = None,
    order_id: Annotated[str | None, typer.Option(help="Only this order's events.")] = None,
    event_id: Annotated[str | None, typer.Option(help="Only this event.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Show the delivery log (one row per attempt), newest first."""

    async def work(session: AsyncSession, _settings: Settings) -> list[dict[str, Any]]:
        await _known_merchant(session, merchant_id)
        items, _ = await service.list_deliveries(
            session, merchant_id=merchant_id, order_id=order_id, event_id=event_id, limit=limit
        )
        return items

    columns = ["attemptTime", "eventId", "type", "attempt", "outcome", "responseStatus", "error"]
    print_rows(with_session(work), columns, as_json)


@webhooks_app.command("resend")
def webhooks_resend(
    event_id: Annotated[str | None, typer.Option(help="Redeliver this event.")] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="Redeliver every failed event of --merchant-id.")
    ] = False,
    merchant_id: MerchantOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Put an event (or all failed ones of a merchant) back in the delivery queue."""
    if (event_id is None) == (not failed):
        raise fail("give either --event-id or --failed")
    if failed and merchant_id is None:
        raise fail("--failed needs --merchant-id")

    async def work(session: AsyncSession, _settings: Settings) -> int:
        await _known_merchant(session, merchant_id)
        return await service.resend(
            session,
            SystemClock(),
            merchant_id=merchant_id,
            event_id=event_id,
            failed=failed,
            actor="cli",
        )

    count = with_session(work)
    if as_json:
        print_json({"count": count})
    else:
        output.print(f"{count} event(s) queued for redelivery")


async def _known_merchant(session: AsyncSession, merchant_id: str | None) -> None:
    """A mistyped --merchant-id is an error, not an empty list."""
    if merchant_id is not None:
        await get_merchant(session, merchant_id)


def rotate_webhook_secret_command(
    merchant_id: Annotated[str, typer.Option(help="Merchant id (mch_...).")],
    as_json: JsonFlag = False,
) -> None:
    """Make a new webhook secret (printed ONCE); the old one also signs for 24 hours."""

    async def work(session: AsyncSession, settings: Settings) -> service.RotatedSecret:
        return await service.rotate_webhook_secret(
            session, load_secret_box(settings), SystemClock(), merchant_id=merchant_id
        )

    rotated = with_session(work)
    print_record(
        {
            "merchantId": rotated.merchant_id,
            "webhookSecret": rotated.webhook_secret,
            "previousValidUntil": rotated.previous_valid_until_ms,
        },
        as_json,
    )
    if as_json:
        return
    error_console.print(
        "Store the new secret now: it is not shown again. Until previousValidUntil each webhook "
        "carries two V2 signatures (new secret first)."
    )


def deliver_command(callback_formats: Mapping[str, CallbackFormat] | None = None) -> None:
    """Run the webhook delivery worker until stopped (SIGINT or SIGTERM). ``callback_formats``:
    the foreign formats it sends (stablegate.cli hands in the compatibility APIs')."""
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)

    async def main() -> None:
        engine = make_engine(settings.effective_database_url)
        try:
            if settings.is_embedded:
                await upgrade(engine)
            worker = WebhookWorker(
                make_sessionmaker(engine),
                SystemClock(),
                settings,
                load_secret_box(settings),
                load_signing_key(settings),
                callback_formats=callback_formats,
            )
            stop = stop_on_signals()
            await worker.run_forever(stop)
        finally:
            await engine.dispose()

    try:
        asyncio.run(main())
    except SecretKeyMissing as exc:
        raise fail(str(exc)) from None
