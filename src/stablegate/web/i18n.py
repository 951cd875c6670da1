"""Translating a page's messages: plain text with ``{name}`` fields, one table per language.

Each page package (the cashier, the dashboard) keeps its own table; the templates escape the
messages like any other text.
"""

from __future__ import annotations

from collections.abc import Mapping


class Translator:
    """``t("key", name=value)``: the message in this language, falling back to ``fallback``'s."""

    def __init__(
        self, messages: Mapping[str, Mapping[str, str]], language: str, fallback: str
    ) -> None:
        self.language = language if language in messages else fallback
        self._messages = messages[self.language]
        self._fallback = messages[fallback]

    def __call__(self, key: str, **fields: object) -> str:
        template = self._messages.get(key) or self._fallback[key]
        return template.format(**fields) if fields else template
