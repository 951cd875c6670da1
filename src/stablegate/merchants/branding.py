"""What the cashier shows the paying customer about the merchant: display name, logo, support.

Set by the merchant (``stablegate merchant set-policy --display-name/--logo-url/
--support-contact``). Stored verbatim and rendered only as text or as JSON strings (the page
escapes them), so the checks here are about shape, not markup: bounded lengths, no control
characters, and a logo only from an absolute ``https`` URL (no ``data:``, no credentials).
An empty value clears the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from stablegate.errors import InvalidRequest
from stablegate.models import Merchant

DISPLAY_NAME_MAX = 80
LOGO_URL_MAX = 512
SUPPORT_CONTACT_MAX = 200


@dataclass(frozen=True)
class MerchantBranding:
    """The ``merchant`` block of the public order view."""

    name: str  # the display name, or the merchant's own name when none is set
    logo_url: str | None
    support_contact: str | None  # an email address, a URL or free text

    @classmethod
    def of(cls, merchant: Merchant) -> MerchantBranding:
        return cls(
            name=merchant.display_name or merchant.name,
            logo_url=merchant.logo_url,
            support_contact=merchant.support_contact,
        )


def _text(field: str, value: str, limit: int) -> str | None:
    value = value.strip()
    if not value:
        return None
    if len(value) > limit:
        raise InvalidRequest(f"{field}: at most {limit} characters", code="invalid_branding")
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in value):
        raise InvalidRequest(
            f"{field}: must not contain control characters", code="invalid_branding"
        )
    return value


def checked_display_name(value: str) -> str | None:
    return _text("display name", value, DISPLAY_NAME_MAX)


def checked_support_contact(value: str) -> str | None:
    return _text("support contact", value, SUPPORT_CONTACT_MAX)


def checked_logo_url(value: str) -> str | None:
    """An absolute https URL the customer's browser may fetch, or None to clear it."""
    url = _text("logo URL", value, LOGO_URL_MAX)
    if url is None:
        return None
    if any(ch.isspace() for ch in url):
        raise InvalidRequest("logo URL: must not contain whitespace", code="invalid_branding")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise InvalidRequest("logo URL: must be an absolute https URL", code="invalid_branding")
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest("logo URL: must not carry credentials", code="invalid_branding")
    return url
