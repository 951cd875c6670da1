"""Per-chain sweeper settings: defaults, overridden by a ``sweeper`` table in the chains file.

```toml
[chains.56.sweeper]
max_items = 50             # items per deployAndFlush transaction
min_sweep = { USDT = "10", USDC = "10" }   # whole tokens; default 1 of each token
native_min = "0.01"        # also sweep native coin above this (off when absent)
max_fee_gwei = "5"         # gas-price cap: maxFeePerGas never above it
budget = "0.5"             # native coin the relayer may spend per budget period
budget_hours = 24
bump_after_seconds = 120   # raise the fee of a transaction not mined after this long
max_attempts = 5           # failed flushes of one item before it is stuck
```
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from stablegate.chain.registry import Chain
from stablegate.errors import InvalidRequest
from stablegate.money import parse_amount

GWEI = 10**9

# Gas-price caps per chain id (maxFeePerGas, gwei): a few times the usual fee, so spikes wait.
DEFAULT_MAX_FEE_GWEI: dict[int, int] = {
    1: 50,
    10: 1,
    56: 5,
    137: 500,
    8453: 1,
    42161: 1,
    31337: 100,
}
FALLBACK_MAX_FEE_GWEI = 100


class SweepConfigError(ValueError):
    """The chains file's ``sweeper`` table is malformed; raised at start-up."""


@dataclass(frozen=True)
class SweepOptions:
    max_items: int = 50
    # Base units per token address (checksummed); unlisted tokens: one whole token.
    min_sweep: Mapping[str, int] = field(default_factory=dict)
    # Native coin is swept from deposit addresses already being swept, above this; None: never.
    native_min: int | None = None
    max_fee_per_gas: int = FALLBACK_MAX_FEE_GWEI * GWEI
    budget_wei: int = 10**18
    budget_period_ms: int = 24 * 3_600_000
    bump_after_ms: int = 120_000
    max_attempts: int = 5
    retry_base_ms: int = 60_000
    retry_max_ms: int = 3_600_000
    gas_margin_percent: int = 20
    lease_ttl_ms: int = 30_000
    poll_interval: float = 5.0
    discover_interval_ms: int = 30_000
    # Our nonce consumed, none of our hashes mined: checked this many times before giving up.
    foreign_nonce_checks: int = 3

    def minimum(self, chain: Chain, token_address: str) -> int:
        if token_address in self.min_sweep:
            return self.min_sweep[token_address]
        token = chain.token_by_address(token_address)
        return 10**token.decimals if token else 10**18

    def retry_delay_ms(self, attempts: int) -> int:
        """Exponential backoff: base, 2x base, 4x base... up to the maximum."""
        doublings = min(max(attempts - 1, 0), 32)
        return min(self.retry_max_ms, self.retry_base_ms << doublings)


def default_options(chain: Chain) -> SweepOptions:
    cap = DEFAULT_MAX_FEE_GWEI.get(chain.id, FALLBACK_MAX_FEE_GWEI) * GWEI
    return SweepOptions(max_fee_per_gas=cap, poll_interval=min(max(chain.block_time, 1.0), 15.0))


def load_options(chain: Chain, chains_file: Path | None) -> SweepOptions:
    """Defaults for the chain, with the chains file's ``[chains.<id>.sweeper]`` applied."""
    options = default_options(chain)
    if chains_file is None:
        return options
    try:
        raw = tomllib.loads(Path(chains_file).read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SweepConfigError(f"cannot read chains file {chains_file}: {exc}") from exc
    table = raw.get("chains", {}).get(str(chain.id), {}).get("sweeper")
    if table is None:
        return options
    if not isinstance(table, dict):
        raise SweepConfigError(f"chain {chain.id}: sweeper must be a table")
    return apply_table(options, chain, table)


def apply_table(options: SweepOptions, chain: Chain, table: Mapping[str, Any]) -> SweepOptions:
    where = f"chain {chain.id} sweeper"
    changes: dict[str, Any] = {}
    try:
        for key, value in table.items():
            if key == "max_items":
                changes["max_items"] = _positive(value, f"{where}.max_items")
            elif key == "min_sweep":
                changes["min_sweep"] = _minimums(chain, value, where)
            elif key == "native_min":
                changes["native_min"] = parse_amount(str(value), 18)
            elif key == "max_fee_gwei":
                changes["max_fee_per_gas"] = parse_amount(str(value), 9)
            elif key == "budget":
                changes["budget_wei"] = parse_amount(str(value), 18)
            elif key == "budget_hours":
                changes["budget_period_ms"] = _milliseconds(value, 3_600_000, where)
            elif key == "bump_after_seconds":
                changes["bump_after_ms"] = _milliseconds(value, 1000, where)
            elif key == "max_attempts":
                changes["max_attempts"] = _positive(value, f"{where}.max_attempts")
            else:
                raise SweepConfigError(f"{where}: unknown setting {key!r}")
    except InvalidRequest as exc:
        raise SweepConfigError(f"{where}: {exc.message}") from exc
    return replace(options, **changes)


def _minimums(chain: Chain, value: Any, where: str) -> dict[str, int]:
    if not isinstance(value, dict):
        raise SweepConfigError(f"{where}.min_sweep must be a table of symbol = amount")
    minimums: dict[str, int] = {}
    for symbol, amount in value.items():
        token = chain.token_by_symbol(str(symbol))
        if token is None:
            raise SweepConfigError(f"{where}.min_sweep: chain has no token {symbol!r}")
        minimums[token.address] = parse_amount(str(amount), token.decimals)
    return minimums


def _positive(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SweepConfigError(f"{where} must be a positive integer")
    return value


def _milliseconds(value: Any, unit_ms: int, where: str) -> int:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = Decimal(-1)
    if not amount.is_finite() or amount <= 0:
        raise SweepConfigError(f"{where}: {value!r} is not a positive duration")
    return int(amount * unit_ms)
