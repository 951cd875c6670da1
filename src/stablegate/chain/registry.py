"""The chain registry: chains, their tokens and finality policy, as data.

Built from the packaged ``chains.toml`` merged with the operator's ``STABLEGATE_CHAINS_FILE``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from eth_utils.address import is_address, to_checksum_address

from stablegate.errors import ChainUnavailable, InvalidRequest


class RegistryError(ValueError):
    """The chains file is malformed; raised at start-up, never at request time."""


@dataclass(frozen=True)
class Token:
    symbol: str
    address: str  # checksummed
    decimals: int
    # Transfers below this many base units are recorded but change no order status.
    min_credit: int = 0
    # What the contract's symbol() returns when it differs from the registry's name
    # (e.g. USDT on Arbitrum answers "USD₮0").
    onchain_symbol: str | None = None


@dataclass(frozen=True)
class Chain:
    id: int
    name: str
    network: str
    confirmations: int
    block_time: float
    testnet: bool = False
    rpc_urls: tuple[str, ...] = ()
    factory: str | None = None
    implementation: str | None = None
    multicall3: str | None = None
    tokens: tuple[Token, ...] = field(default_factory=tuple)
    # Block explorer base URL (EIP-3091 paths); None where there is none (the dev chain).
    explorer_url: str | None = None

    @property
    def has_rpc(self) -> bool:
        return bool(self.rpc_urls)

    def tx_url(self, tx_hash: str | None) -> str | None:
        """The explorer's page of a transaction (EIP-3091 ``/tx/<hash>``), or None."""
        if not self.explorer_url or not tx_hash:
            return None
        return f"{self.explorer_url}/tx/{tx_hash}"

    def address_url(self, address: str) -> str | None:
        """The explorer's page of an address (EIP-3091 ``/address/<addr>``), or None."""
        return f"{self.explorer_url}/address/{address}" if self.explorer_url else None

    def token_by_symbol(self, symbol: str) -> Token | None:
        wanted = symbol.upper()
        return next((t for t in self.tokens if t.symbol.upper() == wanted), None)

    def token_by_address(self, address: str) -> Token | None:
        wanted = address.lower()
        return next((t for t in self.tokens if t.address.lower() == wanted), None)


class ChainRegistry:
    def __init__(self, chains: dict[int, Chain]) -> None:
        self._chains = dict(sorted(chains.items()))

    def __iter__(self) -> Any:
        return iter(self._chains.values())

    def get(self, chain_id: int) -> Chain | None:
        return self._chains.get(chain_id)

    def require(self, chain_id: object) -> Chain:
        """The chain for a request's ``chainId`` (string or integer), or a 400/503 error."""
        parsed = parse_chain_id(chain_id)
        chain = self._chains.get(parsed)
        if chain is None:
            raise InvalidRequest(f"chain {parsed} is not supported", code="unknown_chain")
        if not chain.has_rpc:
            raise ChainUnavailable(f"chain {parsed} has no RPC endpoint configured on this gateway")
        return chain

    def with_rpc(self) -> list[Chain]:
        return [c for c in self._chains.values() if c.has_rpc]


def parse_chain_id(value: object) -> int:
    if isinstance(value, bool):
        raise InvalidRequest("chainId must be a positive integer", code="unknown_chain")
    if isinstance(value, int):
        parsed = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        parsed = int(value)
    else:
        raise InvalidRequest("chainId must be a positive integer", code="unknown_chain")
    if parsed <= 0 or parsed >= 2**63:
        raise InvalidRequest("chainId must be a positive integer", code="unknown_chain")
    return parsed


def load_registry(chains_file: Path | None = None) -> ChainRegistry:
    builtin = tomllib.loads(
        resources.files("stablegate.chain").joinpath("chains.toml").read_text("utf-8")
    )
    raw: dict[str, dict[str, Any]] = dict(builtin.get("chains", {}))
    if chains_file is not None:
        try:
            overrides = tomllib.loads(Path(chains_file).read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise RegistryError(f"cannot read chains file {chains_file}: {exc}") from exc
        for key, entry in overrides.get("chains", {}).items():
            raw[key] = _merge(raw.get(key, {}), entry)
    chains: dict[int, Chain] = {}
    for key, entry in raw.items():
        chain = _build_chain(key, entry)
        chains[chain.id] = chain
    return ChainRegistry(chains)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = {**base, **override}
    if "tokens" in override:
        tokens = {t["symbol"].upper(): t for t in base.get("tokens", [])}
        for token in override["tokens"]:
            tokens[str(token["symbol"]).upper()] = {
                **tokens.get(token["symbol"].upper(), {}),
                **token,
            }
        merged["tokens"] = list(tokens.values())
    return merged


def _address(value: Any, where: str) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise RegistryError(f"{where}: {value!r} is not an address")
    return str(to_checksum_address(value))


def _explorer_url(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    parts = urlsplit(str(value))
    if parts.scheme not in {"http", "https"} or not parts.netloc or parts.query or parts.fragment:
        raise RegistryError(f"{where}: explorer_url {value!r} is not an http(s) base URL")
    return str(value).rstrip("/")


def _build_chain(key: str, entry: dict[str, Any]) -> Chain:
    try:
        chain_id = int(key)
        tokens = tuple(
            Token(
                symbol=str(t["symbol"]),
                address=_address(t["address"], f"chain {key} token {t.get('symbol')}"),
                decimals=int(t["decimals"]),
                min_credit=int(t.get("min_credit", 0)),
                onchain_symbol=str(t["onchain_symbol"]) if t.get("onchain_symbol") else None,
            )
            for t in entry.get("tokens", [])
        )
        urls = entry.get("rpc_urls", [])
        if isinstance(urls, str):
            urls = [urls]
        return Chain(
            id=chain_id,
            name=str(entry.get("name", f"chain {chain_id}")),
            network=str(entry.get("network", f"chain-{chain_id}")),
            confirmations=int(entry.get("confirmations", 64)),
            block_time=float(entry.get("block_time", 12)),
            testnet=bool(entry.get("testnet", False)),
            rpc_urls=tuple(str(u) for u in urls),
            factory=_address(entry["factory"], f"chain {key} factory")
            if entry.get("factory")
            else None,
            implementation=(
                _address(entry["implementation"], f"chain {key} implementation")
                if entry.get("implementation")
                else None
            ),
            multicall3=(
                _address(entry["multicall3"], f"chain {key} multicall3")
                if entry.get("multicall3")
                else None
            ),
            tokens=tokens,
            explorer_url=_explorer_url(entry.get("explorer_url"), f"chain {key}"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, RegistryError):
            raise
        raise RegistryError(f"chain {key}: {exc}") from exc
