"""Foreign wire formats translated onto the gateway's own services (docs/INTEGRATIONS.md): each
parses its format, calls the services the native API calls and renders its own answers; none
owns an order model (CONVENTIONS 12)."""
