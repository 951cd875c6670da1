"""A merchant's ``setRule`` body turned into checked rule fields, with the same checks as the
operator's ``stablegate rates set-rule`` (rates/rules.py): every problem is 400
``invalid_rate_rule`` naming the field, before anything is stored."""

from __future__ import annotations

from typing import Any

from stablegate.errors import InvalidRequest
from stablegate.rates.rules import checked_field
from stablegate.rates.schemas import SetRuleRequest


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
    return {
        name: None if (value := getattr(req, name)) is None else checked_field(name, value)
        for name in sorted(sent)
    }
