"""The watcher's limits and intervals (set from Settings by ``watcher/runner.py``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class WatcherOptions:
    lease_ttl_ms: int = 15_000
    max_range: int = 2000  # blocks per step while backfilling final blocks
    min_range: int = 1
    unfinal_range: int = 64  # blocks per step above the final height (all headers fetched)
    # Transfers recorded per step at most (whole blocks): one step's write transaction stays
    # short (about half a second on an idle 2-core machine) however dense the backlog.
    max_transfers: int = 100
    watch_days: int = 90
    keep_blocks: int = 256  # hashes kept below the final height, for walk-back
    # The finalized tag not advancing for this long while the head does raises an alert.
    stall_alert_ms: int = 10 * 60_000
    poll_interval: float = 1.0
    # How often deposit balances are reconciled against the records (0: never).
    reconcile_interval_ms: int = 10 * 60_000
    # A step (RPC reads and one write transaction) taking longer is abandoned and retried;
    # so are the start-up token check and a reconciliation.
    step_timeout: float = 120.0
