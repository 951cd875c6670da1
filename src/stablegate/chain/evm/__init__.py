"""EVM chains: JSON-RPC client, CREATE2 deposit addresses, contract artifacts, deployment."""
