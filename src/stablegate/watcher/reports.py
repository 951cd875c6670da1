"""What one watcher step did."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class StepOutcome(StrEnum):
    STANDBY = "standby"  # another process holds the lease
    IDLE = "idle"  # at the head
    ADVANCED = "advanced"
    REORG = "reorg"
    RETRY = "retry"  # an RPC failure or inconsistent answer; nothing written
    FENCED = "fenced"  # lost the lease or the cursor moved underneath: rolled back


@dataclass
class StepReport:
    outcome: StepOutcome
    from_block: int | None = None
    to_block: int | None = None
    transfers: int = 0
    orders_changed: int = 0
    head: int | None = None
    final: int | None = None
    detail: str = ""
