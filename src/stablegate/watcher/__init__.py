"""The per-chain watcher: a boring loop over durable state (cursor, block hashes, leases)."""
