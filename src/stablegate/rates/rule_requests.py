"""A merchant's ``setRule`` body turned into checked rule fields, with the same checks as the
operator's ``stablegate rates set-rule`` (rates/rules.py): every problem is 400
``invalid_rate_rule`` naming the field, before anything is stored."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from stablegate.errors import InvalidRequest
from stablegate.rates.pricing import decimal_text
from stablegate.rates.rules import (
    check_max_age,
    check_method,
    check_sources,
    parse_adjust,
    parse_percent,
    parse_step,
)
from stablegate.rates.schemas import SetRuleRequest

MAX_PCT = Decimal(50)  # exclusive: a spread or band of half the price is a typo


def rule_changes(req: SetRuleRequest) -> dict[str, Any]:
    """The fields the body names, checked and in their stored (canonical) form: store.set_rule's
    ``changes``. A field sent as null is None (the pair inherits it again); a field left out is
    not in the result (the stored value stays)."""
    sent = {name for name in req.model_fields_set if name not in ("symbol", "currency")}
    if not sent:
        raise InvalidRequest(
            "give at least one rule field (sources, method, spreadPct, adjust, maxAgeSeconds, "
            "bandPct, step); deleteRule drops a rule",
            code="invalid_rate_rule",
        )
    checked: dict[str, Any] = {
        "sources": lambda v: list(check_sources(v)),
        "method": lambda v: check_method(v).value,
        "spread_pct": lambda v: decimal_text(parse_percent(v, "spreadPct", high=MAX_PCT)),
        "adjust": lambda v: parse_adjust(v).text,
        "max_age_s": check_max_age,
        "band_pct": lambda v: decimal_text(
            parse_percent(v, "bandPct", high=MAX_PCT, allow_zero=False)
        ),
        "step": lambda v: decimal_text(parse_step(v)),
    }
    return {
        name: None if (value := getattr(req, name)) is None else checked[name](value)
        for name in sorted(sent)
    }
