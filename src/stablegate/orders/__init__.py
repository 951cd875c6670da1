"""Orders: request schemas, the state table, the service and the merchant endpoints."""
