"""Fetch the Transfer logs of a block range for the watched addresses, verified.

Two directions: transfers TO watched addresses (payments) and transfers FROM deposit contracts
(``sources``: flushes, whoever sent them, which reconciliation subtracts). RPC calls per range
do not grow with open orders beyond the chunking: address topics go in chunks of at most 1000
addresses, and past ``large_set`` addresses all Transfers of the registry's tokens are fetched
and matched locally (unknown tokens are then left to reconciliation, which sees every balance).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from stablegate.chain.evm.blocks import BlockHeader, BlockUnavailable, fetch_headers, parse_header
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.rpc_errors import RpcError
from stablegate.chain.evm.transfers import (
    TRANSFER_TOPIC,
    TransferLog,
    address_topic,
    decode_transfer,
)
from stablegate.chain.registry import Chain
from stablegate.watcher.watched import WatchedAddresses

ADDRESS_CHUNK = 1000
LARGE_SET = 5000


class InconsistentAnswer(RpcError):
    """The node's answers contradict each other (a reorg between calls, or a bad node)."""

    def __init__(self, message: str) -> None:
        super().__init__(-2, message)


def log_calls(
    from_block: int,
    to_block: int,
    addresses: Sequence[str],
    tokens: Sequence[str],
    *,
    sources: Sequence[str] = (),
    chunk: int = ADDRESS_CHUNK,
    large_set: int = LARGE_SET,
) -> list[tuple[str, list[Any]]]:
    """The eth_getLogs calls covering the watched addresses (as recipients) and the deposit
    contracts in ``sources`` (as senders) in the range."""
    if not addresses:
        return []
    base = {"fromBlock": hex(from_block), "toBlock": hex(to_block)}
    if len(addresses) > large_set and tokens:
        return [("eth_getLogs", [{**base, "address": list(tokens), "topics": [TRANSFER_TOPIC]}])]

    def calls(watched: Sequence[str], position: int) -> list[tuple[str, list[Any]]]:
        return [
            (
                "eth_getLogs",
                [
                    {
                        **base,
                        "topics": [
                            TRANSFER_TOPIC,
                            *([None] * (position - 1)),
                            [address_topic(a) for a in watched[start : start + chunk]],
                        ],
                    }
                ],
            )
            for start in range(0, len(watched), chunk)
        ]

    return calls(addresses, 2) + calls(sources, 1)


def decode_transfers(
    answers: Sequence[Any],
    from_block: int,
    to_block: int,
    wanted: AbstractSet[str],
    sources: Sequence[str] = (),
) -> list[TransferLog]:
    """Transfers to watched addresses and from ``sources`` (sorted, lowercase) in eth_getLogs
    answers, deduplicated and ordered."""
    transfers: dict[tuple[str, int], TransferLog] = {}
    for logs in answers:
        if not isinstance(logs, list):
            raise InconsistentAnswer("eth_getLogs did not answer with a list")
        for log in logs:
            if _topic_address(log, 2) not in wanted and not _has(sources, _topic_address(log, 1)):
                continue
            transfer = decode_transfer(log)
            if transfer is None:
                continue
            if not from_block <= transfer.block_number <= to_block:
                raise InconsistentAnswer(f"log of block {transfer.block_number} outside the range")
            transfers[(transfer.tx_hash, transfer.log_index)] = transfer
    return sorted(transfers.values(), key=lambda t: (t.block_number, t.log_index))


async def fetch_range(
    rpc: RpcClient,
    from_block: int,
    to_block: int,
    header_numbers: Sequence[int],
    addresses: Sequence[str],
    tokens: Sequence[str],
    *,
    lookup: AbstractSet[str] | None = None,
    sources: Sequence[str] = (),
) -> tuple[list[TransferLog], dict[int, BlockHeader]]:
    """The range's transfers and the headers asked for, read so they describe ONE chain.

    The log queries and the range's first and last headers travel in one HTTP request, so
    one node answers them: a node that lacks the blocks answers no header (not an empty log
    list), and one on another fork answers headers that do not follow our cursor. Further
    headers are checked by the caller against the parent links or the logs' block hashes.
    """
    calls: list[tuple[str, Sequence[Any]]] = list(
        log_calls(from_block, to_block, addresses, tokens, sources=sources)
    )
    ends = sorted({from_block, to_block})
    calls += [("eth_getBlockByNumber", [hex(n), False]) for n in ends]
    answers = await rpc.batch_one_request(calls)
    headers: dict[int, BlockHeader] = {}
    for number, raw in zip(ends, answers[len(answers) - len(ends) :], strict=True):
        if not raw:
            raise BlockUnavailable(number)
        headers[number] = parse_header(raw)
    wanted = lookup if lookup is not None else frozenset(a.lower() for a in addresses)
    transfers = decode_transfers(
        answers[: len(answers) - len(ends)],
        from_block,
        to_block,
        wanted,
        sources,
    )
    rest = [n for n in header_numbers if n not in headers]
    headers.update(await fetch_headers(rpc, rest))
    return transfers, headers


@dataclass(frozen=True)
class ScannedRange:
    """The blocks a step read: their headers (every one above the final height, else those
    holding logs and the last), the transfers in them and each log's position in its receipt."""

    first: int
    last: int
    headers: dict[int, BlockHeader]
    transfers: list[TransferLog]
    positions: dict[tuple[str, int], int]


async def scan_range(
    rpc: RpcClient,
    chain: Chain,
    watched: WatchedAddresses,
    *,
    cursor_hash: str,
    first: int,
    last: int,
    below_final: bool,
    max_transfers: int | None = None,
) -> ScannedRange:
    """Headers and transfers of blocks ``first``..``last``, checked to follow the cursor
    (``cursor_hash``) and each other. Below the final height only the headers of blocks
    holding logs are read; above it every one, each checked against its parent.

    With ``max_transfers``, a range holding more transfers ends earlier (``last`` of the
    answer), at a whole block: the step's write transaction stays short whatever the backlog,
    so it neither holds SQLite's write lock for seconds nor loses its work again and again to a
    process that keeps being restarted before it commits."""
    transfers, headers = await fetch_range(
        rpc,
        first,
        last,
        [] if below_final else list(range(first, last + 1)),
        watched.addresses(),
        [token.address for token in chain.tokens],
        lookup=watched.lookup(),
        sources=watched.deposits(),
    )
    if max_transfers is not None and len(transfers) > max_transfers:
        last = cut_block(transfers, first, max_transfers)
        transfers = [t for t in transfers if t.block_number <= last]
        # Above the final height the headers up to the cut stay for the parent links below.
        headers = {n: h for n, h in headers.items() if n <= last}
    if below_final:
        # Blocks holding logs, and the last: their hashes must be the logs' (checked below).
        needed = {transfer.block_number for transfer in transfers} | {last}
        headers.update(await fetch_headers(rpc, sorted(needed - set(headers))))
    if headers[first].parent_hash != cursor_hash:
        raise InconsistentAnswer(f"block {first} does not follow the cursor")
    if not below_final:
        for number in range(first + 1, last + 1):
            if headers[number].parent_hash != headers[number - 1].hash:
                raise InconsistentAnswer(f"block {number} does not follow {number - 1}")
    for transfer in transfers:
        if headers[transfer.block_number].hash != transfer.block_hash:
            raise InconsistentAnswer(f"log in block {transfer.block_number} from another fork")
    positions = await log_positions(rpc, transfers)
    return ScannedRange(
        first=first, last=last, headers=headers, transfers=transfers, positions=positions
    )


def cut_block(transfers: Sequence[TransferLog], first: int, limit: int) -> int:
    """The last block to process so that at most ``limit`` of the (ordered) ``transfers`` are
    taken, in whole blocks; at least block ``first``, however many it holds, so a step always
    moves on."""
    over = transfers[limit].block_number  # the block the limit falls in
    return max(first, over - 1)


def _has(ordered: Sequence[str], value: str | None) -> bool:
    """Membership in a sorted list without building a set of 100k addresses per step."""
    if value is None:
        return False
    index = bisect_left(ordered, value)
    return index < len(ordered) and ordered[index] == value


def _topic_address(log: dict[str, Any], position: int) -> str | None:
    """The sender (1) or recipient (2) of a Transfer log, lowercase."""
    topics = log.get("topics") or []
    if len(topics) != 3:
        return None
    return "0x" + str(topics[position])[-40:].lower()


async def log_positions(
    rpc: RpcClient, transfers: Sequence[TransferLog]
) -> dict[tuple[str, int], int]:
    """Each transfer's position within its transaction's receipt: its stable identity.

    The block-level log index changes when a reorg re-includes the transaction elsewhere.
    """
    positions: dict[tuple[str, int], int] = {}
    by_tx: dict[str, list[TransferLog]] = {}
    for t in transfers:
        by_tx.setdefault(t.tx_hash, []).append(t)
    hashes = list(by_tx)
    # One JSON-RPC batch for all receipts of the range, not one request each.
    receipts = await rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
    for tx_hash, receipt in zip(hashes, receipts, strict=True):
        items = by_tx[tx_hash]
        if not receipt:
            raise InconsistentAnswer(f"no receipt for {tx_hash}")
        if str(receipt["blockHash"]).lower() != items[0].block_hash:
            raise InconsistentAnswer(f"receipt of {tx_hash} is from another block")
        index_to_position = {
            int(str(log["logIndex"]), 16): position for position, log in enumerate(receipt["logs"])
        }
        for t in items:
            if t.log_index not in index_to_position:
                raise InconsistentAnswer(f"log {t.log_index} missing from receipt of {tx_hash}")
            positions[(tx_hash, t.log_index)] = index_to_position[t.log_index]
    return positions
