"""Every foreign callback format, by ``orders.notify_format``, for whoever builds a webhook
worker (the CLI, the embedded runner, the demo)."""

from __future__ import annotations

from stablegate.compat.epay.callbacks import callback_formats as epay_formats
from stablegate.compat.greenfield.callbacks import greenfield_callback_formats
from stablegate.webhooks.callbacks import CallbackFormat


def callback_formats() -> dict[str, CallbackFormat]:
    return {**epay_formats(), **greenfield_callback_formats()}
