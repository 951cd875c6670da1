"""The merchants' web dashboard at ``/dashboard/`` (docs/DESIGN.md §9 "Merchant dashboard"):
accounts, sessions, CSRF, API keys, in English and Simplified Chinese."""
