"""What one sweeper step did."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from stablegate.sweeper.service import ItemResult


class SweepOutcome(StrEnum):
    STANDBY = "standby"  # another process holds the lease
    IDLE = "idle"  # nothing due (or the batch in flight just settled)
    SENT = "sent"  # a new batch signed, stored and broadcast
    WAITING = "waiting"  # a batch in flight, not mined yet
    BUMPED = "bumped"  # a batch in flight re-signed with higher fees
    BLOCKED = "blocked"  # work is due but the gas cap, budget or relayer balance forbids it
    RETRY = "retry"  # an RPC failure; nothing written
    FENCED = "fenced"  # lost the lease: rolled back


@dataclass
class SweepReport:
    outcome: SweepOutcome
    tx_hash: str | None = None
    items: int = 0
    settled: list[ItemResult] = field(default_factory=list)
    detail: str = ""
