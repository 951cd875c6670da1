"""Live checks of the chains for the console: each RPC URL asked for its chain id and latest
block, and the relayer's gas balance per chain.

Each URL gets a client of its own (one attempt, a short timeout), so a failing URL is named
instead of being hidden by the failover. The checks never raise: a failure is a short reason
("timeout", "HTTP 503", "wrong chain id …"), never the answer's body, and URLs are shown
without their path or query, where providers put their API keys.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from eth_account import Account

from stablegate.chain.evm.rpc import RpcClient, redact_url
from stablegate.chain.evm.rpc_errors import RpcError
from stablegate.chain.registry import Chain, ChainRegistry
from stablegate.config import Settings

PROBE_TIMEOUT_S = 3.0
# At most this many URLs asked at once.
CONCURRENCY = 8
# Every EVM chain's native coin has 18 decimals; the symbol is only shown.
NATIVE_DECIMALS = 18
NATIVE_SYMBOLS = {1: "ETH", 10: "ETH", 56: "BNB", 97: "tBNB", 137: "POL", 8453: "ETH"}
NATIVE_SYMBOLS |= {42161: "ETH", 43114: "AVAX", 11155111: "ETH", 31337: "ETH"}


@dataclass(frozen=True)
class RpcProbe:
    chain_id: int
    chain_name: str
    url_shown: str
    ok: bool
    block: int | None
    latency_ms: int | None
    error: str | None


@dataclass(frozen=True)
class RelayerBalance:
    chain_id: int
    chain_name: str
    symbol: str
    decimals: int
    wei: int | None
    error: str | None


def _reason(exc: BaseException) -> str:
    """A short, body-free account of a failure (the URL's secrets never in it)."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    text = str(exc)
    if "timed out" in text:
        return "timeout"
    for marker in ("HTTP 4", "HTTP 5"):
        at = text.find(marker)
        if at >= 0:
            return text[at : at + 8].strip()
    if "ConnectError" in text or "ConnectTimeout" in text:
        return "connection failed"
    if isinstance(exc, RpcError) and not text.startswith("-32603"):
        return f"error {exc.code}"
    return "no usable answer"


def _hex_int(value: object) -> int:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) > 66:
        raise ValueError("not a hex quantity")
    return int(value, 16)


async def _probe(chain: Chain, url: str, timeout_s: float) -> RpcProbe:
    shown = redact_url(url)
    started = time.monotonic()
    client = RpcClient([url], timeout=timeout_s, max_attempts=1, retry_delay=0)
    try:
        async with asyncio.timeout(timeout_s * 2):
            chain_id = _hex_int(await client.call("eth_chainId", []))
            block = _hex_int(await client.call("eth_blockNumber", []))
    except ValueError:
        return RpcProbe(chain.id, chain.name, shown, False, None, None, "malformed answer")
    except (RpcError, TimeoutError) as exc:
        return RpcProbe(chain.id, chain.name, shown, False, None, None, _reason(exc))
    except Exception:  # a URL httpx cannot use at all: the page must still answer
        return RpcProbe(chain.id, chain.name, shown, False, None, None, "unusable URL")
    finally:
        await client.aclose()
    latency = int((time.monotonic() - started) * 1000)
    if chain_id != chain.id:
        wrong = f"wrong chain id {chain_id} (expected {chain.id})"
        return RpcProbe(chain.id, chain.name, shown, False, block, latency, wrong)
    return RpcProbe(chain.id, chain.name, shown, True, block, latency, None)


async def probe_rpc_urls(
    registry: ChainRegistry, timeout_s: float = PROBE_TIMEOUT_S
) -> list[RpcProbe]:
    """Every RPC URL of every watched chain, asked concurrently, in the registry's order."""
    limit = asyncio.Semaphore(CONCURRENCY)

    async def bounded(chain: Chain, url: str) -> RpcProbe:
        async with limit:
            return await _probe(chain, url, timeout_s)

    return list(
        await asyncio.gather(
            *(bounded(chain, url) for chain in registry.with_rpc() for url in chain.rpc_urls)
        )
    )


def relayer_address(settings: Settings) -> str | None:
    """The address of ``STABLEGATE_RELAYER_KEY`` if this process has a usable one."""
    if settings.relayer_key is None:
        return None
    try:
        return str(Account.from_key(settings.relayer_key.get_secret_value()).address)
    except (ValueError, TypeError):
        return None


async def _balance(chain: Chain, address: str, timeout_s: float) -> RelayerBalance:
    symbol = NATIVE_SYMBOLS.get(chain.id, "native coin")
    client = RpcClient(list(chain.rpc_urls), timeout=timeout_s, retry_delay=0)
    try:
        async with asyncio.timeout(timeout_s * 2):
            wei = _hex_int(await client.call("eth_getBalance", [address, "latest"]))
    except ValueError:
        return RelayerBalance(chain.id, chain.name, symbol, NATIVE_DECIMALS, None, "malformed")
    except (RpcError, TimeoutError) as exc:
        return RelayerBalance(chain.id, chain.name, symbol, NATIVE_DECIMALS, None, _reason(exc))
    except Exception:  # as in _probe
        return RelayerBalance(chain.id, chain.name, symbol, NATIVE_DECIMALS, None, "unusable URL")
    finally:
        await client.aclose()
    return RelayerBalance(chain.id, chain.name, symbol, NATIVE_DECIMALS, wei, None)


async def relayer_balances(
    registry: ChainRegistry, address: str | None, timeout_s: float = PROBE_TIMEOUT_S
) -> list[RelayerBalance]:
    """The relayer's balance on each watched chain (through its failover client); empty when
    this process has no relayer key."""
    if address is None:
        return []
    return list(
        await asyncio.gather(
            *(_balance(chain, address, timeout_s) for chain in registry.with_rpc())
        )
    )
