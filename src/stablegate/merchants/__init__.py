"""Merchants, API keys, public keys, payout addresses and their secrets."""
