"""Headers of every HTML page the gateway serves (the cashier, the API reference).

The pages load nothing from elsewhere and run no inline code: the policy allows only the
gateway's own scripts, styles and images.
"""

from __future__ import annotations

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def page_headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
        **(extra or {}),
    }
