"""Exchange rates: each source's latest quote, their history, and the pricing rules.

Prices are exact decimal strings (``"7.2134"``), never floats: the same text on SQLite and
PostgreSQL, parsed with ``Decimal`` where they are used.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from stablegate.db.base import Base

# rate_rules.scope of the operator's gateway-wide rules; a merchant's own rules carry its id.
GATEWAY_SCOPE = ""


class RateQuote(Base):
    """The newest quote of each (source, base, quote): what pricing reads, and what survives a
    restart with every source down."""

    __tablename__ = "rate_quotes"

    source: Mapped[str] = mapped_column(String(20), primary_key=True)
    base: Mapped[str] = mapped_column(String(10), primary_key=True)
    quote: Mapped[str] = mapped_column(String(10), primary_key=True)
    mid: Mapped[str] = mapped_column(String(48))
    bid: Mapped[str | None] = mapped_column(String(48))
    ask: Mapped[str | None] = mapped_column(String(48))
    source_time_ms: Mapped[int] = mapped_column(BigInteger)
    fetched_at_ms: Mapped[int] = mapped_column(BigInteger)


class RateHistory(Base):
    """Every quote stored, so a merchant can audit the rate an order was priced at."""

    __tablename__ = "rate_history"
    __table_args__ = (Index("ix_rate_history_pair_time", "base", "quote", "source_time_ms"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(20))
    base: Mapped[str] = mapped_column(String(10))
    quote: Mapped[str] = mapped_column(String(10))
    mid: Mapped[str] = mapped_column(String(48))
    bid: Mapped[str | None] = mapped_column(String(48))
    ask: Mapped[str | None] = mapped_column(String(48))
    source_time_ms: Mapped[int] = mapped_column(BigInteger)
    fetched_at_ms: Mapped[int] = mapped_column(BigInteger, index=True)


class RateRule(Base):
    """How one pair is priced, for the whole gateway (scope ``""``) or one merchant (its id).

    A null field inherits: a merchant's rule from the gateway's rule of the pair, that one from
    the settings (``STABLEGATE_RATE_*``).
    """

    __tablename__ = "rate_rules"

    scope: Mapped[str] = mapped_column(String(40), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(20), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    sources: Mapped[list[str] | None] = mapped_column(JSON)
    method: Mapped[str | None] = mapped_column(String(10))  # median | first
    spread_pct: Mapped[str | None] = mapped_column(String(20))
    # BEpusdt's forms: "7.4" a fixed rate, "~0.98" a multiplier, "+0.3" / "-0.3" an addend.
    adjust: Mapped[str | None] = mapped_column(String(40))
    max_age_s: Mapped[int | None] = mapped_column(Integer)
    band_pct: Mapped[str | None] = mapped_column(String(20))
    step: Mapped[str | None] = mapped_column(String(40))  # round token amounts up to this
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str] = mapped_column(String(200))
