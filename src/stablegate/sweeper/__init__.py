"""The sweeper: batch ``deployAndFlush`` of deposit contracts holding final funds, sent by a
relayer key that holds only gas, one active sweeper per chain (docs/DESIGN.md §7)."""

from stablegate.sweeper.commands import run_sweepers, sweep_command
from stablegate.sweeper.options import SweepOptions, load_options
from stablegate.sweeper.reports import SweepOutcome, SweepReport
from stablegate.sweeper.service import OrderSweep, sweeps_for_order
from stablegate.sweeper.worker import ChainSweeper

__all__ = [
    "ChainSweeper",
    "OrderSweep",
    "SweepOptions",
    "SweepOutcome",
    "SweepReport",
    "load_options",
    "run_sweepers",
    "sweep_command",
    "sweeps_for_order",
]
