"""The dashboard's two languages, English and Simplified Chinese, chosen like the cashier's
(:func:`stablegate.cashier.i18n.negotiate_language`: ``?lang=``, then Accept-Language), with the
choice kept in a cookie so forms and redirects stay in it. Messages are plain text with
``{name}`` fields; the templates escape them like any other text. Each area of the pages keeps
its messages in :mod:`stablegate.dashboard.messages`; the pages see them as one catalogue."""

from __future__ import annotations

from stablegate.cashier.i18n import DEFAULT_LANGUAGE, LANGUAGES, negotiate_language
from stablegate.dashboard.messages import (
    account,
    common,
    keys,
    orders,
    overview,
    security,
    settings,
    webhooks,
)
from stablegate.web.i18n import Translator

__all__ = ["AREAS", "LANGUAGES", "MESSAGES", "choose_language", "translator"]

# No key is in two areas (tests/dashboard/test_languages.py), so the merge loses nothing.
AREAS = (common, account, keys, security, overview, webhooks, settings, orders)

MESSAGES: dict[str, dict[str, str]] = {
    language: {key: text for area in AREAS for key, text in area.MESSAGES[language].items()}
    for language in LANGUAGES
}


def choose_language(requested: str | None, cookie: str | None, accept_language: str | None) -> str:
    """``?lang=``, else the language cookie, else Accept-Language, else English."""
    for candidate in (requested, cookie):
        if candidate and candidate in LANGUAGES:
            return candidate
    return negotiate_language(None, accept_language)


def translator(language: str) -> Translator:
    """The dashboard's messages in ``language`` (English when we do not have it)."""
    return Translator(MESSAGES, language, DEFAULT_LANGUAGE)
