"""Webhooks: the outbox written with each state change, signing, and the delivery worker."""
