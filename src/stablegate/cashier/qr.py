"""QR codes as PNG, rendered on first request and cached, never on the order-creation path.

segno is pure Python (milliseconds per code), so rendering inside createQrOrder would cap
order creation; an order's QR content never changes, so caching by content is exact.
"""

from __future__ import annotations

import base64
import io
from functools import lru_cache

import segno


@lru_cache(maxsize=4096)
def qr_png(content: str, scale: int = 6) -> bytes:
    buffer = io.BytesIO()
    segno.make(content, error="m", micro=False).save(buffer, kind="png", scale=scale, border=2)
    return buffer.getvalue()


def qr_data_url(content: str) -> str:
    return "data:image/png;base64," + base64.b64encode(qr_png(content)).decode()
