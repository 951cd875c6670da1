"""CSRF tokens of the dashboard's forms (hidden input ``csrf_token``), checked on every POST.

Nothing is stored: a signed-in form's token is an HMAC of the session's cookie token, a log-in
or sign-up form's an HMAC of a random pre-session cookie. Another site can make the browser send
the cookie (SameSite=Lax stops that for POSTs, this is the second lock) but cannot read it or
the token in the page.
"""

from __future__ import annotations

import hashlib
import hmac

from stablegate.dashboard.errors import CsrfRefused


def form_token(key: bytes, kind: str, cookie_value: str) -> str:
    """``kind`` is ``session``, ``pending`` (the log-in's second step) or ``pre``: a token of
    one kind never passes for another's."""
    message = f"{kind}:{cookie_value}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def check_form_token(expected: str | None, offered: str | None) -> None:
    """Constant-time comparison; a missing cookie or field is refused like a wrong one."""
    if not expected or not offered:
        raise CsrfRefused("the form's security token is missing", code="csrf_failed")
    if not hmac.compare_digest(expected.encode(), offered.encode("utf-8", "surrogateescape")):
        raise CsrfRefused("the form's security token does not match", code="csrf_failed")
