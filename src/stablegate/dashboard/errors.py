"""What a dashboard form can be refused for. Each code is also the key of the sentence the page
shows (``error_<code>`` in :mod:`stablegate.dashboard.i18n`); the pages never answer JSON."""

from __future__ import annotations

from stablegate.errors import GatewayError


class AccountError(GatewayError):
    """A form the dashboard refuses: ``invalid_name``, ``invalid_email``, ``password_too_short``,
    ``password_too_long``, ``email_taken``, ``invalid_credentials``, ``email_not_verified``,
    ``merchant_pending``, ``merchant_disabled``, ``invite_required``, ``invalid_invite``,
    ``invalid_link``, ``expired_link``, ``used_link``, ``link_address_changed`` (a reset link
    to a former address), ``invalid_code`` (a wrong or spent second-factor code),
    ``wrong_password`` (the current password, asked again on the Security page)."""

    status = 400
    code = "invalid_credentials"


class CsrfRefused(GatewayError):
    """A POST without the form's token, or with another one (403 ``csrf_failed``)."""

    status = 403
    code = "csrf_failed"
