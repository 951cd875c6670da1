"""The gateway operator's console at /admin/ (docs/DESIGN.md §9)."""
