"""The sweeper's pure rules: fees and bumps, settings, what an ItemFailed reason means."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak
from tests.chain_files import write_chains_file

from stablegate.chain.evm import create2
from stablegate.chain.evm.contracts import forwarder, forwarder_factory
from stablegate.chain.registry import Chain, Token
from stablegate.sweeper.batch import (
    FlushItem,
    Verdict,
    calldata_of,
    encode_batch,
    judge_failure,
    out_of_gas_index,
    sign_batch,
    verified_items,
)
from stablegate.sweeper.fees import Fees, Market, bumped_fees, initial_fees
from stablegate.sweeper.options import GWEI, SweepConfigError, SweepOptions, load_options

USDT = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
CHAIN = Chain(
    id=1,
    name="Ethereum",
    network="ethereum",
    confirmations=64,
    block_time=12,
    tokens=(Token("USDT", USDT, 6), Token("DAI", "0x6B175474E89094C44Da98b954EedeAC495271d0F", 18)),
)


def error_string(text: str) -> bytes:
    return keccak(text="Error(string)")[:4] + encode(["string"], [text])


# -- fees ---------------------------------------------------------------------------------------


def test_initial_fees_leave_room_for_the_base_fee_and_respect_the_cap() -> None:
    market = Market(base_fee=10 * GWEI, priority_fee=GWEI)
    assert initial_fees(market, cap=100 * GWEI) == Fees(21 * GWEI, GWEI)
    assert initial_fees(market, cap=15 * GWEI) == Fees(15 * GWEI, GWEI)  # capped
    assert initial_fees(market, cap=11 * GWEI) == Fees(11 * GWEI, GWEI)
    assert initial_fees(market, cap=11 * GWEI - 1) is None  # the market is above the cap


def test_a_bump_raises_both_fees_by_at_least_an_eighth_and_stops_at_the_cap() -> None:
    old = Fees(20 * GWEI, 2 * GWEI)
    calm = Market(base_fee=GWEI, priority_fee=GWEI)
    bumped = bumped_fees(old, calm, cap=100 * GWEI)
    assert bumped == Fees(22_500_000_000, 2_250_000_000)
    odd = bumped_fees(Fees(9, 1), Market(0, 0), cap=100)
    assert odd == Fees(11, 2)  # rounded up: 10.125 -> 11, 1.125 -> 2
    # The market moved far above: follow it.
    busy = Market(base_fee=50 * GWEI, priority_fee=3 * GWEI)
    assert bumped_fees(old, busy, cap=200 * GWEI) == Fees(103 * GWEI, 3 * GWEI)
    assert bumped_fees(old, busy, cap=60 * GWEI) == Fees(60 * GWEI, 3 * GWEI)
    # No room for +12.5% under the cap: no bump at all (a node would refuse it).
    assert bumped_fees(old, calm, cap=22 * GWEI) is None


# -- settings -----------------------------------------------------------------------------------


def test_settings_come_from_the_chains_file(tmp_path: Path) -> None:
    path = write_chains_file(
        tmp_path / "chains.toml",
        ["https://rpc.example"],
        chain_id=1,
        sweeper="""
max_items = 20
min_sweep = { usdt = "25.5" }
native_min = "0.01"
max_fee_gwei = "30.5"
budget = "0.25"
budget_hours = 12
bump_after_seconds = 90
max_attempts = 3
""",
    )
    options = load_options(CHAIN, path)
    assert options.max_items == 20
    assert options.minimum(CHAIN, USDT) == 25_500_000
    assert options.minimum(CHAIN, CHAIN.tokens[1].address) == 10**18  # default: one whole token
    assert options.native_min == 10**16
    assert options.max_fee_per_gas == 30_500_000_000
    assert options.budget_wei == 25 * 10**16
    assert options.budget_period_ms == 12 * 3_600_000
    assert options.bump_after_ms == 90_000
    assert options.max_attempts == 3
    assert load_options(CHAIN, None).max_fee_per_gas == 50 * GWEI  # Ethereum's default cap


@pytest.mark.parametrize(
    "table",
    [
        "max_items = 0",
        'min_sweep = { BUSD = "1" }',
        'max_fee_gwei = "-1"',
        'budget = "1e3"',
        'bump_after_seconds = "soon"',
        'speed = "fast"',
    ],
)
def test_malformed_settings_are_refused_at_start(tmp_path: Path, table: str) -> None:
    path = write_chains_file(tmp_path / "chains.toml", chain_id=1, sweeper=table)
    with pytest.raises(SweepConfigError):
        load_options(CHAIN, path)


def test_retries_back_off_exponentially() -> None:
    options = SweepOptions(retry_base_ms=60_000, retry_max_ms=600_000)
    assert [options.retry_delay_ms(n) for n in range(1, 7)] == [
        60_000,
        120_000,
        240_000,
        480_000,
        600_000,
        600_000,
    ]


# -- items --------------------------------------------------------------------------------------


def test_what_an_item_failure_means() -> None:
    nothing = forwarder().entry("error", "NothingToFlush")
    assert nothing  # the reason the contract gives for an empty forwarder
    empty = keccak(text="NothingToFlush(address)")[:4] + encode(["address"], [USDT])
    not_a_token = keccak(text="NotAToken(address)")[:4] + encode(["address"], [USDT])
    failed = keccak(text="TransferFailed(address)")[:4] + encode(["address"], [USDT])
    assert judge_failure(empty) is Verdict.DONE
    assert judge_failure(not_a_token) is Verdict.STUCK
    assert judge_failure(error_string("Blacklistable: account is blacklisted")) is Verdict.STUCK
    assert judge_failure(error_string("Pausable: paused")) is Verdict.RETRY
    assert judge_failure(failed) is Verdict.RETRY
    assert judge_failure(b"") is Verdict.RETRY
    assert judge_failure(b"\xde\xad\xbe\xef") is Verdict.RETRY
    out_of_gas = keccak(text="ItemOutOfGas(uint256)")[:4] + encode(["uint256"], [7])
    assert out_of_gas_index(out_of_gas) == 7
    assert out_of_gas_index(error_string("x")) is None


def test_items_whose_payout_does_not_derive_the_deposit_are_refused() -> None:
    factory, implementation = create2.factory_address(), create2.implementation_address()
    payout = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
    salt = create2.deposit_salt("ord_1")
    deposit = create2.forwarder_address(factory, implementation, payout, salt)
    good = FlushItem(payout, salt, USDT, deposit)
    tampered = FlushItem("0x000000000000000000000000000000000000dEaD", salt, USDT, deposit)
    assert verified_items(factory, implementation, [good, tampered]) == ([good], [tampered])


def test_a_signed_batch_keeps_its_calldata_for_a_fee_bump() -> None:
    from eth_account import Account

    relayer = Account.from_key(keccak(text="relayer"))
    item = FlushItem(USDT, b"\x01" * 32, USDT, USDT)
    data = encode_batch([item])
    assert data[:4] == forwarder_factory().selector("deployAndFlush")
    signed = sign_batch(relayer, 56, USDT, 7, 100_000, Fees(3 * GWEI, GWEI), data)
    assert signed.nonce == 7 and signed.raw_tx.startswith("0x02")
    assert calldata_of(signed.raw_tx) == data
