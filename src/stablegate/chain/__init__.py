"""Chains: the registry, EVM JSON-RPC, deposit-address contracts, and the local dev node."""
