"""Stored rates: each source's newest quote (read by pricing), the history, and the rules.

Services take a session and flush; the caller's scope commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import Clock
from stablegate.models import AuditEntry, RateHistory, RateQuote, RateRule
from stablegate.models.rate import GATEWAY_SCOPE
from stablegate.rates.pricing import decimal_text
from stablegate.rates.quote import Quote

HOUR_MS = 3_600_000
# The fields of a rule a change may set; a value of None clears the field (it inherits again).
RULE_FIELDS = ("sources", "method", "spread_pct", "adjust", "max_age_s", "band_pct", "step")


def _text(value: Decimal | None) -> str | None:
    return None if value is None else decimal_text(value)


def _quote(row: RateQuote) -> Quote:
    return Quote(
        source=row.source,
        base=row.base,
        quote=row.quote,
        mid=Decimal(row.mid),
        bid=Decimal(row.bid) if row.bid is not None else None,
        ask=Decimal(row.ask) if row.ask is not None else None,
        time_ms=row.source_time_ms,
    )


def _history(row: RateQuote) -> RateHistory:
    """The history entry of a stored quote as it now stands."""
    return RateHistory(
        source=row.source,
        base=row.base,
        quote=row.quote,
        mid=row.mid,
        bid=row.bid,
        ask=row.ask,
        source_time_ms=row.source_time_ms,
        fetched_at_ms=row.fetched_at_ms,
    )


async def latest_quotes(session: AsyncSession) -> list[Quote]:
    """The newest stored quote of every (source, base, quote)."""
    return [_quote(row) for row in (await session.scalars(select(RateQuote))).all()]


async def save_quotes(session: AsyncSession, quotes: Iterable[Quote], fetched_at_ms: int) -> int:
    """Store one fetch's quotes as the newest of their key; add a history row when the price
    changed or the clock hour turned since the key was last fetched. Returns history rows added.

    A quote not newer than the stored one (a provider answering with an older time) is
    ignored, so the stored quote never goes back in time."""
    wanted = {(q.source, q.base, q.quote): q for q in quotes if q.mid > 0}
    if not wanted:
        return 0
    sources = {key[0] for key in wanted}
    stored = {
        (row.source, row.base, row.quote): row
        for row in (
            await session.scalars(select(RateQuote).where(RateQuote.source.in_(sources)))
        ).all()
    }
    added = 0
    for key, quote in wanted.items():
        row = stored.get(key)
        mid, bid, ask = decimal_text(quote.mid), _text(quote.bid), _text(quote.ask)
        if row is None:
            row = RateQuote(source=quote.source, base=quote.base, quote=quote.quote)
            session.add(row)
            changed = True
        else:
            if quote.time_ms < row.source_time_ms:
                continue
            changed = row.mid != mid or row.fetched_at_ms // HOUR_MS != fetched_at_ms // HOUR_MS
        row.mid, row.bid, row.ask = mid, bid, ask
        row.source_time_ms, row.fetched_at_ms = quote.time_ms, fetched_at_ms
        if changed:
            session.add(_history(row))
            added += 1
    await session.flush()
    return added


async def prune_history(session: AsyncSession, older_than_ms: int) -> int:
    result = await session.execute(
        delete(RateHistory).where(RateHistory.fetched_at_ms < older_than_ms)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def history(
    session: AsyncSession, base: str, quote: str, since_ms: int, until_ms: int
) -> list[RateHistory]:
    """Every stored price of a pair between two times, oldest first (audits)."""
    return list(
        (
            await session.scalars(
                select(RateHistory)
                .where(
                    RateHistory.base == base,
                    RateHistory.quote == quote,
                    RateHistory.source_time_ms >= since_ms,
                    RateHistory.source_time_ms <= until_ms,
                )
                .order_by(RateHistory.source_time_ms, RateHistory.id)
            )
        ).all()
    )


async def rules_for(
    session: AsyncSession, merchant_id: str | None, symbol: str, currency: str
) -> tuple[RateRule | None, RateRule | None]:
    """The gateway's and the merchant's rule of a pair (either may be None)."""
    scopes = [GATEWAY_SCOPE] if merchant_id is None else [GATEWAY_SCOPE, merchant_id]
    rows = {
        row.scope: row
        for row in (
            await session.scalars(
                select(RateRule).where(
                    RateRule.scope.in_(scopes),
                    RateRule.symbol == symbol,
                    RateRule.currency == currency,
                )
            )
        ).all()
    }
    return rows.get(GATEWAY_SCOPE), rows.get(merchant_id) if merchant_id is not None else None


async def rules_of(session: AsyncSession, scope: str) -> list[RateRule]:
    """Every rule of one scope (``""`` the gateway, else a merchant id), by pair."""
    return list(
        (
            await session.scalars(
                select(RateRule)
                .where(RateRule.scope == scope)
                .order_by(RateRule.symbol, RateRule.currency)
            )
        ).all()
    )


def rule_fields(row: RateRule) -> dict[str, Any]:
    return {name: getattr(row, name) for name in RULE_FIELDS}


async def set_rule(
    session: AsyncSession,
    clock: Clock,
    *,
    scope: str,
    symbol: str,
    currency: str,
    changes: Mapping[str, Any],
    actor: str,
) -> RateRule | None:
    """Set (or, with None, clear) the given fields of a pair's rule; a rule left with no field
    is deleted (None returned). Values must already be validated (rules.py). Audited."""
    unknown = set(changes) - set(RULE_FIELDS)
    if unknown:
        raise ValueError(f"not rule fields: {sorted(unknown)}")
    now = clock.now_ms()
    row = await session.get(RateRule, (scope, symbol, currency), with_for_update=True)
    before = rule_fields(row) if row is not None else None
    if row is None:
        row = RateRule(scope=scope, symbol=symbol, currency=currency, updated_by=actor)
        for name in RULE_FIELDS:
            setattr(row, name, None)
        session.add(row)
    for name, value in changes.items():
        setattr(row, name, value)
    row.updated_at_ms, row.updated_by = now, actor
    after = rule_fields(row)
    _audit(session, now, actor, "rates.set_rule", scope, symbol, currency, before, after)
    if all(value is None for value in after.values()):
        await session.delete(row)
        await session.flush()
        return None
    await session.flush()
    return row


async def delete_rule(
    session: AsyncSession, clock: Clock, *, scope: str, symbol: str, currency: str, actor: str
) -> bool:
    """Remove a pair's rule of one scope (it inherits again); False when there was none."""
    row = await session.get(RateRule, (scope, symbol, currency), with_for_update=True)
    if row is None:
        return False
    _audit(
        session,
        clock.now_ms(),
        actor,
        "rates.delete_rule",
        scope,
        symbol,
        currency,
        rule_fields(row),
        None,
    )
    await session.delete(row)
    await session.flush()
    return True


def _audit(
    session: AsyncSession,
    now: int,
    actor: str,
    action: str,
    scope: str,
    symbol: str,
    currency: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    session.add(
        AuditEntry(
            at_ms=now,
            actor=actor,
            action=action,
            subject=f"{scope or 'gateway'}:{symbol}/{currency}",
            details={"before": before, "after": after},
        )
    )
